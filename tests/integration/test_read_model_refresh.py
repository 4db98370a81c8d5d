"""The status cache's background refresh when the read model lacks an item (the projector behind
or stopped): the entry is renewed from PostgreSQL, in the background, and the item is written, so
no read on the request path ever misses for it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry

from daemons.api.read_model import CachedReadModel
from tests.integration.test_unit_of_work import new_order, pool
from uoom.config import Settings
from uoom.domain import events
from uoom.stores.aws import dynamodb_client
from uoom.stores.unit_of_work import PostgresUnitOfWork

__all__ = ["pool"]  # the fixture


async def item(settings: Settings, order_id: str) -> dict[str, Any] | None:
    async with dynamodb_client(settings) as ddb:
        response = await ddb.get_item(TableName=settings.dynamodb_table, Key={"orderId": {"S": order_id}})
    found: dict[str, Any] | None = response.get("Item")
    return found


async def test_a_due_entry_the_read_model_lacks_is_renewed_from_postgresql_and_its_item_written(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        order = await uow.add_order(new_order())
        await uow.add_event(events.ORDER_CREATED, order)
        await uow.commit()
    key = str(order.id)
    assert await item(settings, key) is None  # no projector here: the read model never had it
    async with dynamodb_client(settings) as ddb:
        reads = CachedReadModel(settings.model_copy(update={"status_cache_ttl_ms": 2000}), pool, ddb, None,
                                CollectorRegistry())  # fmt: skip
        reads.created(order)
        stored_at, lifetime, snapshot = reads.cache._entries[key]
        reads.cache._entries[key] = (stored_at - 0.8 * lifetime, lifetime, snapshot)  # due for a refresh
        assert reads.cached(uuid.UUID(key)) == snapshot  # a hit, which asks for the refresh
        assert reads._refresher is not None
        await reads._refresher
        renewed_at = reads.cache._entries[key][0]
        assert renewed_at > stored_at - 0.8 * lifetime and renewed_at <= time.monotonic()
        assert reads.sources["postgres"] == 0  # nothing on the request path went to PostgreSQL
        await reads.close()  # the background write of the item
    written = await item(settings, key)
    assert written is not None and written["version"]["N"] == "1"
