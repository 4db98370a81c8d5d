"""The DynamoDB status table (read side). Writes are conditional on `version`, so an older
snapshot never replaces a newer one, whoever writes it (API write-through or relay projector).

An item past its TTL is missing, whatever it holds: DynamoDB deletes expired items only within
days, so reads skip them (`from_item`) and a write replaces them whatever their version; without
that, an expired item of the current version refused every refresh and every read of the order
went to PostgreSQL until DynamoDB got round to deleting it."""

from __future__ import annotations

import time
from typing import Any

import orjson
from botocore.exceptions import ClientError

from uoom.config import Settings

NEWER_ONLY = "attribute_not_exists(orderId) OR version < :v OR #ttl <= :now"


def to_item(snapshot: dict[str, Any], ttl_hours: int, now: float | None = None) -> dict[str, Any]:
    """Order snapshot (camelCase JSON) -> DynamoDB item in the low-level attribute format."""
    expires = int((now or time.time()) + ttl_hours * 3600)
    return {
        "orderId": {"S": snapshot["id"]},
        "customerId": {"S": snapshot["customerId"]},
        "status": {"S": snapshot["status"]},
        "version": {"N": str(snapshot["version"])},
        "updatedAt": {"S": snapshot["updatedAt"]},
        "createdAt": {"S": snapshot["createdAt"]},
        "ttl": {"N": str(expires)},
        "order": {"S": orderjson(snapshot)},
    }


def orderjson(snapshot: dict[str, Any]) -> str:
    return orjson.dumps(snapshot).decode()


def from_item(item: dict[str, Any], now: float | None = None) -> dict[str, Any] | None:
    """Item -> order snapshot; None when the item is past its TTL (expiry is never prompt)."""
    if int(item["ttl"]["N"]) <= (time.time() if now is None else now):
        return None
    snapshot: dict[str, Any] = orjson.loads(item["order"]["S"])
    # an item written before trips has neither key: the API's views always carry both
    snapshot.setdefault("tripId", None)
    snapshot.setdefault("coRiderId", None)
    return snapshot


def _newer_only_put(settings: Settings, snapshot: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "TableName": settings.dynamodb_table,
        "Item": to_item(snapshot, settings.order_cache_ttl_hours, now),
        "ConditionExpression": NEWER_ONLY,
        "ExpressionAttributeNames": {"#ttl": "ttl"},  # TTL is a reserved word
        "ExpressionAttributeValues": {":v": {"N": str(snapshot["version"])}, ":now": {"N": str(int(now))}},
    }


async def put_if_newer(client: Any, settings: Settings, snapshot: dict[str, Any]) -> bool:
    """Write the snapshot unless the table holds the same or a newer version that has not
    expired. True if written."""
    try:
        await client.put_item(**_newer_only_put(settings, snapshot, time.time()))
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


TRANSACTION_LIMIT = 100  # DynamoDB's most actions in one TransactWriteItems
# A cancelled transaction's reason per item: the item's own condition failed (a newer version
# is there: nothing to write), its content can never be written, or nothing (another item
# cancelled the transaction) / a conflict or throttling (worth another try).
_STALE, _UNWRITABLE = "ConditionalCheckFailed", {"ValidationError", "ItemCollectionSizeLimitExceeded"}


async def put_all_if_newer(client: Any, settings: Settings, snapshots: list[dict[str, Any]]) -> dict[str, str]:
    """`put_if_newer` for many orders (one snapshot each), up to 100 to a TransactWriteItems: one
    request instead of one each, which is most of a write's cost in the client (signing, HTTP,
    parsing: ~2 ms of CPU). The outcome by order id: "applied", "stale" (the table holds this
    version or a newer one), "unwritable" (refused for its content), or "retry" (not written:
    throttled, a conflicting write, or cancelled with the others and out of rounds).
    Raises on anything but a cancelled transaction (DynamoDB down, a missing table)."""
    outcome: dict[str, str] = {}
    for start in range(0, len(snapshots), TRANSACTION_LIMIT):
        pending = snapshots[start : start + TRANSACTION_LIMIT]
        # each round either writes every pending item or takes at least one out
        for _ in range(3):
            if not pending:
                break
            now = time.time()
            try:
                await client.transact_write_items(
                    TransactItems=[{"Put": _newer_only_put(settings, s, now)} for s in pending]
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                again = _sort_cancelled(pending, _reasons(exc, len(pending)), outcome)
                if len(again) == len(pending):  # no item's own reason: one at a time settles it
                    for snapshot in again:
                        outcome[snapshot["id"]] = await _put_one(client, settings, snapshot)
                    again = []
                pending = again
                continue
            outcome.update((s["id"], "applied") for s in pending)
            pending = []
        outcome.update((s["id"], "retry") for s in pending)
    return outcome


def _reasons(exc: ClientError, count: int) -> list[str]:
    """The cancellation reason of each item, in the request's order. botocore keeps DynamoDB's
    `CancellationReasons` in the error response; the message repeats them ("[None, ...]")."""
    reasons = exc.response.get("CancellationReasons")
    if isinstance(reasons, list) and len(reasons) == count:
        return [str(r.get("Code") or "None") for r in reasons]
    message = str(exc.response["Error"].get("Message", ""))
    listed = message[message.rfind("[") + 1 : message.rfind("]")].split(",") if "[" in message else []
    codes = [code.strip() for code in listed]
    return codes if len(codes) == count else ["None"] * count


def _sort_cancelled(pending: list[dict[str, Any]], reasons: list[str], outcome: dict[str, str]) -> list[dict[str, Any]]:
    """Record the items that cancelled the transaction for good; the ones to try again."""
    again = []
    for snapshot, reason in zip(pending, reasons, strict=True):
        if reason == _STALE:
            outcome[snapshot["id"]] = "stale"
        elif reason in _UNWRITABLE:
            outcome[snapshot["id"]] = "unwritable"
        else:
            again.append(snapshot)
    return again


async def _put_one(client: Any, settings: Settings, snapshot: dict[str, Any]) -> str:
    try:
        return "applied" if await put_if_newer(client, settings, snapshot) else "stale"
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in ("ValidationException", "ItemCollectionSizeLimitExceededException"):
            return "unwritable"
        if code in ("ThrottlingException", "ProvisionedThroughputExceededException", "TransactionConflictException"):
            return "retry"
        raise
