"""The write path: one PostgreSQL transaction for the order (or its change) and its outbox event,
then the read model: written behind the response for a new order, through (before the response)
for a status change. Neither can fail the request."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from daemons.api.assign import Assigner
from daemons.api.metrics import ApiMetrics
from daemons.api.problems import Problem
from daemons.api.read_model import CachedReadModel
from daemons.api.schemas import CreateOrder, StatusChange
from uoom.domain import events
from uoom.domain.orders import IllegalTransition, OrderStatus, check_transition, order_total
from uoom.stores import orders
from uoom.stores.postgres import append_event


class OrderService:
    def __init__(self, pool: asyncpg.Pool, assigner: Assigner, reads: CachedReadModel, metrics: ApiMetrics) -> None:
        self.pool, self.assigner, self.reads, self.stage = pool, assigner, reads, metrics.stage

    async def create(self, body: CreateOrder, key_id: str, idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
        request_hash = hashlib.sha256(orjson.dumps(body.model_dump(mode="json"))).hexdigest()
        if idempotency_key:
            earlier = await self._replay(key_id, idempotency_key, request_hash)
            if earlier:
                return earlier
        restaurant = await self.pool.fetchrow(
            "SELECT latitude, longitude, prep_minutes FROM restaurants WHERE id = $1 AND active",
            body.restaurant_id,
        )
        if restaurant is None:
            problem = {"field": "restaurantId", "message": "no active restaurant has this id"}
            raise Problem(422, "Invalid request", "unknown restaurant: restaurantId", errors=[problem])
        order_id = uuid.uuid4()
        items = [i.model_dump(mode="json", by_alias=True) for i in body.items]
        total = order_total(items)
        address = body.delivery_address
        with self.stage("create.assign"):
            choice = await self.assigner.choose(
                str(order_id), (restaurant["latitude"], restaurant["longitude"]),
                (address.latitude, address.longitude), float(total), restaurant["prep_minutes"] * 60.0,
            )  # fmt: skip
        eta = choice.eta_seconds
        values = {
            "id": order_id, "customer_id": body.customer_id, "restaurant_id": body.restaurant_id,
            "items": items, "delivery_location": address.model_dump(mode="json", by_alias=True),
            "total": total, "channel_id": choice.channel_id,
            "delivery_cost": None if choice.cost is None else round(Decimal(str(choice.cost)), 2),
            "eta_seconds": eta, "assignment_source": choice.source, "notes": body.notes,
            "estimated_delivery_time": datetime.now(UTC) + timedelta(seconds=eta) if eta else None,
        }  # fmt: skip
        try:
            with self.stage("create.transaction"):
                snapshot = await self._insert(values, key_id, idempotency_key, request_hash)
        except _LostRace:  # a concurrent twin with the same key committed first: answer as it did
            replay = await self._replay(key_id, idempotency_key or "", request_hash)
            assert replay is not None
            return replay
        self.reads.write_behind(snapshot)
        return 201, snapshot

    async def _insert(self, values: dict[str, Any], key_id: str, idempotency_key: str | None,
                      request_hash: str) -> dict[str, Any]:  # fmt: skip
        order_id = values["id"]
        async with self.pool.acquire() as conn, conn.transaction():
            row = await orders.insert(conn, values)
            snapshot = orders.snapshot(row)
            await append_event(conn, events.ORDER_CREATED, order_id, 1, {"order": snapshot})
            if idempotency_key:
                stored = await conn.fetchval(
                    """INSERT INTO idempotency_keys (api_key_id, key, request_hash, status_code, response)
                       VALUES ($1, $2, $3, 201, $4) ON CONFLICT DO NOTHING RETURNING 1""",
                    uuid.UUID(key_id),
                    idempotency_key,
                    request_hash,
                    snapshot,
                )
                if stored is None:
                    raise _LostRace  # rolls our order back
        return snapshot

    async def _replay(self, key_id: str, key: str, request_hash: str) -> tuple[int, dict[str, Any]] | None:
        row = await self.pool.fetchrow(
            "SELECT request_hash, status_code, response FROM idempotency_keys WHERE api_key_id = $1 AND key = $2",
            uuid.UUID(key_id), key,
        )  # fmt: skip
        if row is None:
            return None
        if row["request_hash"] != request_hash:
            raise Problem(409, "Conflict", "this Idempotency-Key was used with a different request body")
        return row["status_code"], row["response"]

    async def change_status(self, order_id: uuid.UUID, change: StatusChange, if_match: str | None) -> dict[str, Any]:
        expected = _version(if_match)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await orders.lock(conn, order_id)  # serialises concurrent changes of one order
            if row is None:
                raise Problem(404, "Not found", f"no order {order_id}")
            if row["version"] != expected:
                raise Problem(412, "Precondition failed",
                              f"order is at version {row['version']}, not {expected}; re-read it",
                              currentVersion=row["version"])  # fmt: skip
            current = OrderStatus(row["status"])
            try:
                check_transition(current, change.status)
            except IllegalTransition as exc:
                raise Problem(409, "Illegal transition", str(exc),
                              allowedNext=[str(s) for s in exc.allowed]) from None  # fmt: skip
            updated = await orders.set_status(conn, order_id, change.status.value)
            snapshot = orders.snapshot(updated)
            await append_event(
                conn, events.ORDER_STATUS_CHANGED, order_id, updated["version"],
                {"order": snapshot, "from": current.value, "to": change.status.value, "reason": change.reason},
            )  # fmt: skip
        await self.reads.write_through(snapshot)
        return snapshot


class _LostRace(Exception):
    pass


def _version(if_match: str | None) -> int:
    if not if_match:
        raise Problem(428, "Precondition required", "send If-Match with the order's version")
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise Problem(400, "Bad request", 'If-Match must be the order\'s version number, e.g. "3"')
    return int(value)
