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
    return snapshot


async def put_if_newer(client: Any, settings: Settings, snapshot: dict[str, Any]) -> bool:
    """Write the snapshot unless the table holds the same or a newer version that has not
    expired. True if written."""
    now = time.time()
    try:
        await client.put_item(
            TableName=settings.dynamodb_table,
            Item=to_item(snapshot, settings.order_cache_ttl_hours, now),
            ConditionExpression=NEWER_ONLY,
            ExpressionAttributeNames={"#ttl": "ttl"},  # TTL is a reserved word
            ExpressionAttributeValues={":v": {"N": str(snapshot["version"])}, ":now": {"N": str(int(now))}},
        )
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
