"""Order endpoints (the seed's paths under /api)."""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Coroutine
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request

from daemons.api import headers
from daemons.api.deadline import within
from daemons.api.deps import api_key, resources
from daemons.api.problems import UNAVAILABLE, Problem
from daemons.api.schemas import (
    BatchStatusRequest,
    BatchStatusResponse,
    CreateOrder,
    CustomerOrders,
    CustomerOrdersQuery,
    OrderStatusView,
    OrderView,
    StatusChange,
)
from daemons.kit.http import json_response
from daemons.kit.logs import describe
from uoom.services import orders as services
from uoom.stores.snapshots import to_snapshot
from uoom.stores.unit_of_work import IdempotencyKey, PostgresUnitOfWork

T = TypeVar("T")
log = logging.getLogger("uoom.api")
router = APIRouter(prefix="/api", dependencies=[Depends(api_key)])
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Unreadable body, malformed If-Match or Idempotency-Key, or a cursor this API did not issue",
        **PROBLEM,
    },
    401: {"description": "No or unknown API key", **PROBLEM},
    403: {"description": "Revoked API key", **PROBLEM},
    422: {"description": "Invalid request", **PROBLEM},
    429: {"description": "Rate limited", **PROBLEM},
    503: {"description": "A dependency is unavailable", **PROBLEM},
}


# A create that timed out may have committed. With a key, a retry answers with that order, or
# creates it once; without one, a retry may make a second order.
CREATE_UNAVAILABLE = {
    True: "the order database did not answer in time; the order may have been created: retry with the "
    "same Idempotency-Key and body, which answers with that order if it was, or creates it once if not",
    False: "the order database did not answer in time; the order may have been created: look for it "
    "(GET /api/customers/{id}/orders) before retrying, and send an Idempotency-Key so that retries are safe",
}


async def _within(request: Request, work: Coroutine[Any, Any, T]) -> T:
    return await within(resources(request).settings.api_request_timeout_ms / 1000, work)


async def _read(request: Request, order_id: uuid.UUID) -> tuple[dict[str, Any] | None, str]:
    """A cache hit answers without a task or a deadline (nothing to wait for); a miss goes to the
    stores within the request timeout."""
    reads = resources(request).reads
    snapshot = reads.cached(order_id)
    if snapshot is not None:
        return snapshot, "cache"
    return await _within(request, reads.load(order_id))


# The routes answer with json_response: the snapshots are the contract's shape already
# (tests/unit/test_api_views.py holds them to it), and FastAPI's validation and re-serialisation
# of every answer against `response_model` was a tenth of a create's CPU and more of a status read's.
def _etag(snapshot: dict[str, Any]) -> str:
    return f'"{snapshot["version"]}"'


def _status_view(snapshot: dict[str, Any], source: str) -> dict[str, Any]:
    return {
        "orderId": snapshot["id"], "status": snapshot["status"], "version": snapshot["version"],
        "updatedAt": snapshot["updatedAt"], "channelId": snapshot.get("channelId"),
        "estimatedDeliveryTime": snapshot.get("estimatedDeliveryTime"), "tripId": snapshot.get("tripId"),
        "coRiderId": snapshot.get("coRiderId"), "source": source,
    }  # fmt: skip


@router.post("/orders", status_code=201, response_model=OrderView,
             responses={**ERRORS, 409: {"description": "Idempotency-Key reused with another body", **PROBLEM},
                        413: {"description": "Body too large", **PROBLEM}})  # fmt: skip
async def create_order(
    body: CreateOrder, request: Request, key_id: Annotated[str, Depends(api_key)],
    idempotency_key: headers.IdempotencyKey = "",
) -> Any:  # fmt: skip
    """Create an order: channel assignment, order row + outbox event in one transaction, read-model write."""
    res = resources(request)
    idempotency = None
    if (key := headers.idempotency_key(idempotency_key)) is not None:
        body_hash = hashlib.sha256(orjson.dumps(body.model_dump(mode="json"))).hexdigest()
        idempotency = IdempotencyKey(uuid.UUID(key_id), key, body_hash)
    uow = PostgresUnitOfWork(res.pool, res.restaurants)
    work = services.create_order(body.to_command(), uow, res.assigner, res.reads, idempotency, res.metrics.stage)
    try:
        snapshot = to_snapshot(await _within(request, work))
    except UNAVAILABLE as exc:
        # The transaction may have committed without the answer reaching us (a stall at COMMIT):
        # the client must not take the 503 for "not created".
        log.warning("dependency unavailable during a create (%s): answered 503, %s", describe(exc),
                    "a retry with its Idempotency-Key replays it" if idempotency else "sent without a key")  # fmt: skip
        raise Problem(503, "Service unavailable", CREATE_UNAVAILABLE[idempotency is not None],
                      {"Retry-After": "1"}) from None  # fmt: skip
    return json_response(snapshot, 201, {"Location": f"/api/orders/{snapshot['id']}", "ETag": _etag(snapshot)})


@router.get("/orders/{order_id}/status", response_model=OrderStatusView,
            responses={**ERRORS, 404: {"description": "Unknown order", **PROBLEM}})  # fmt: skip
async def order_status(order_id: uuid.UUID, request: Request) -> Any:
    """The hot path: in-process cache, DAX or DynamoDB, PostgreSQL on a miss (then backfilled)."""
    snapshot, source = await _read(request, order_id)
    if snapshot is None:
        raise Problem(404, "Not found", f"no order {order_id}")
    return json_response(_status_view(snapshot, source))


@router.api_route("/orders/status:batch", methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"],
                  include_in_schema=False)  # fmt: skip
async def batch_status_by_another_method() -> None:
    """Registered before `/orders/{order_id}` (GET), which would take this path for an order id (422)."""
    raise Problem(405, "Method Not Allowed", "Method Not Allowed", {"Allow": "POST"})


@router.get("/orders/{order_id}", response_model=OrderView,
            responses={**ERRORS, 404: {"description": "Unknown order", **PROBLEM}})  # fmt: skip
async def get_order(order_id: uuid.UUID, request: Request) -> Any:
    """The whole order: read side first, PostgreSQL as fallback."""
    snapshot, _ = await _read(request, order_id)
    if snapshot is None:
        raise Problem(404, "Not found", f"no order {order_id}")
    return json_response(snapshot, headers={"ETag": _etag(snapshot)})


@router.patch("/orders/{order_id}/status", response_model=OrderView,
              responses={**ERRORS, 404: {"description": "Unknown order", **PROBLEM},
                         409: {"description": "Illegal transition", **PROBLEM},
                         412: {"description": "Stale version", **PROBLEM},
                         428: {"description": "If-Match missing", **PROBLEM}})  # fmt: skip
async def change_status(
    order_id: uuid.UUID, change: StatusChange, request: Request,
    if_match: headers.IfMatch = "",
) -> Any:  # fmt: skip
    """Move an order to its next state; If-Match carries the version the client saw."""
    res = resources(request)
    work = services.change_status(order_id, change.status, headers.if_match_version(if_match), change.reason,
                                  PostgresUnitOfWork(res.pool), res.reads)  # fmt: skip
    snapshot = to_snapshot(await _within(request, work))
    return json_response(snapshot, headers={"ETag": _etag(snapshot)})


@router.post("/orders/status:batch", response_model=BatchStatusResponse, responses=ERRORS)
async def batch_status(body: BatchStatusRequest, request: Request) -> Any:
    """Up to 100 statuses at once; unknown ids are listed under notFound."""
    found, missing = await _within(request, resources(request).reads.batch(body.order_ids))
    return json_response({"orders": [_status_view(s, src) for s, src in found], "notFound": [str(m) for m in missing]})


@router.get("/customers/{customer_id}/orders", response_model=CustomerOrders, responses=ERRORS)
async def customer_orders(
    customer_id: uuid.UUID, request: Request, params: Annotated[CustomerOrdersQuery, Query()],
) -> Any:  # fmt: skip
    """A customer's orders, newest first, from the read model's CustomerStatusIndex (PostgreSQL
    when the read model fails or does not answer within its deadline)."""
    start = _decode_cursor(params.cursor, customer_id) if params.cursor else None
    listed, last = await _within(request, resources(request).reads.customer_page(customer_id, params.limit, start))
    return json_response(
        {
            "orders": [_status_view(s, source) for s, source in listed],
            "nextCursor": base64.urlsafe_b64encode(orjson.dumps(last)).decode() if last else None,
        }
    )


def _decode_cursor(cursor: str, customer_id: uuid.UUID) -> Any:
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if key["customerId"]["S"] != str(customer_id) or set(key) != {"customerId", "updatedAt", "orderId"}:
            raise ValueError
        # anything but non-empty string attributes makes DynamoDB fail the query: a 400, not a 500
        if any(not isinstance(v, dict) or set(v) != {"S"} or not isinstance(v["S"], str) or not v["S"]
               for v in key.values()):  # fmt: skip
            raise ValueError
        # ... and PostgreSQL (the fallback) reads the same cursor as a time and an order id
        if datetime.fromisoformat(key["updatedAt"]["S"]).tzinfo is None:
            raise ValueError
        uuid.UUID(key["orderId"]["S"])
        return key
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise Problem(400, "Bad request", "cursor is not one this API returned for this customer") from None
