"""The PostgreSQL unit of work against a real database of its own: what commits stays (the order
with its outbox event), what does not commit leaves no trace, and the stored idempotent answer
reads back as the same order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from pydantic import SecretStr

from uoom import demo, migrate
from uoom.domain import events
from uoom.domain.orders import Address, ChannelAssignment, LineItem, NewOrder, OrderStatus, PlaceOrder
from uoom.stores.postgres import create_pool
from uoom.stores.snapshots import to_snapshot
from uoom.stores.unit_of_work import RESTAURANT_CACHE_SECONDS, IdempotencyKey, PostgresUnitOfWork, restaurant_cache

RESTAURANT_ID, _, LAT, LON = demo.restaurants()[0]


@pytest.fixture
async def pool(scratch_dsn: str, settings) -> AsyncIterator[asyncpg.Pool]:  # type: ignore[no-untyped-def]
    await migrate.up(scratch_dsn)
    pool = await create_pool(settings.model_copy(update={"database_url": SecretStr(scratch_dsn)}))
    async with pool.acquire() as conn:
        await demo.load(conn)
    yield pool
    await pool.close()


def new_order() -> NewOrder:
    request = PlaceOrder(uuid.uuid4(), RESTAURANT_ID, (LineItem("a", "A", 3, Decimal("0.10")),),
                         Address("s", "c", "p", LAT + 0.01, LON), None)  # fmt: skip
    channel = ChannelAssignment(demo.CHANNELS[0][0], Decimal("4.20"), 900, "greedy")
    return NewOrder(uuid.uuid4(), request, channel, datetime.now(UTC))


async def test_a_committed_order_is_stored_with_its_event_and_reads_back_the_same(pool: asyncpg.Pool) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        restaurant = await uow.restaurant(RESTAURANT_ID)
        order = await uow.add_order(new_order())
        await uow.add_event(events.ORDER_CREATED, order)
        await uow.commit()
    assert restaurant is not None and restaurant.latitude == LAT
    assert (order.version, order.status, order.total) == (1, OrderStatus.PENDING, Decimal("0.30"))
    event = await pool.fetchrow("SELECT type, aggregate_version, data FROM outbox_events WHERE aggregate_id = $1",
                                order.id)  # fmt: skip
    assert (event["type"], event["aggregate_version"]) == (events.ORDER_CREATED, 1)
    assert event["data"] == {"order": to_snapshot(order)}

    async with PostgresUnitOfWork(pool) as uow:
        locked = await uow.lock_order(order.id)
        changed = await uow.set_status(order.id, OrderStatus.CONFIRMED)
        await uow.commit()
    assert locked == order
    assert (changed.status, changed.version) == (OrderStatus.CONFIRMED, 2) and changed.updated_at >= order.updated_at


async def test_leaving_without_commit_or_on_an_error_keeps_nothing(pool: asyncpg.Pool) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        order = await uow.add_order(new_order())
        await uow.add_event(events.ORDER_CREATED, order)
    with pytest.raises(RuntimeError):
        async with PostgresUnitOfWork(pool) as uow:
            await uow.add_order(new_order())
            raise RuntimeError("boom")
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox_events") == 0


async def test_an_idempotent_answer_is_stored_once_and_reads_back_as_the_same_order(pool: asyncpg.Pool) -> None:
    api_key = await pool.fetchval(
        "INSERT INTO api_keys (id, name, key_hash, prefix) VALUES ($1, 'k', 'h', 'p') RETURNING id", uuid.uuid4()
    )
    key = IdempotencyKey(api_key, "key-1", "hash-1")
    async with PostgresUnitOfWork(pool) as uow:
        order = await uow.add_order(new_order())
        await uow.add_event(events.ORDER_CREATED, order)
        await uow.remember(key, order)
        assert await uow.commit()
    async with PostgresUnitOfWork(pool) as uow:  # a twin: its answer is already there, so nothing of it is kept
        twin = await uow.add_order(new_order())
        await uow.add_event(events.ORDER_CREATED, twin)
        await uow.remember(key, twin)
        assert not await uow.commit()
        remembered = await uow.remembered(key)
    assert remembered is not None and (remembered.request_hash, remembered.order) == ("hash-1", order)
    assert await pool.fetchval("SELECT array_agg(id) FROM orders") == [order.id]
    assert await pool.fetchval("SELECT array_agg(aggregate_id) FROM outbox_events") == [order.id]
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.lock_order(order.id) == order  # built before the INSERT, read back the same


async def test_one_commit_writes_a_new_order_and_its_events_in_their_order(pool: asyncpg.Pool) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        order = await uow.add_order(new_order())
        for kind in (events.ORDER_CREATED, events.ORDER_STATUS_CHANGED, events.ORDER_TRIP_JOINED):
            await uow.add_event(kind, order, {"kind": kind})
        assert await uow.commit()
    rows = await pool.fetch("SELECT type, data FROM outbox_events ORDER BY position")
    assert [(r["type"], r["data"]["kind"]) for r in rows] == [(k, k) for k in
           (events.ORDER_CREATED, events.ORDER_STATUS_CHANGED, events.ORDER_TRIP_JOINED)]  # fmt: skip
    assert all(r["data"]["order"] == to_snapshot(order) for r in rows)


async def test_an_event_is_timed_at_its_commit_not_at_its_transactions_start(pool: asyncpg.Pool) -> None:
    """The relay's commitToAck counts from the event's created_at (migration 0008): a transaction
    that works a while before it commits must not count that while as delivery delay."""
    async with PostgresUnitOfWork(pool) as uow:
        order = await uow.add_order(new_order())
        await uow.add_event(events.ORDER_CREATED, order)
        started = await uow._conn.fetchval("SELECT now()")  # the transaction's start
        await uow._conn.execute("SELECT pg_sleep(0.3)")  # the rest of a long use case
        assert await uow.commit()
    written = await pool.fetchval("SELECT created_at FROM outbox_events WHERE aggregate_id = $1", order.id)
    assert (written - started).total_seconds() >= 0.3


async def test_restaurants_are_read_once_per_cache_period_and_a_deactivation_shows_after_it(
    pool: asyncpg.Pool,
) -> None:
    now = [0.0]
    cache = restaurant_cache(timer=lambda: now[0])
    first = await PostgresUnitOfWork(pool, cache).restaurant(RESTAURANT_ID)
    await pool.execute("UPDATE restaurants SET active = false WHERE id = $1", RESTAURANT_ID)
    assert await PostgresUnitOfWork(pool).restaurant(RESTAURANT_ID) is None  # uncached: PostgreSQL's answer
    assert await PostgresUnitOfWork(pool, cache).restaurant(RESTAURANT_ID) == first  # within the period
    now[0] += RESTAURANT_CACHE_SECONDS + 0.1
    assert await PostgresUnitOfWork(pool, cache).restaurant(RESTAURANT_ID) is None
    unknown = uuid.uuid4()
    assert await PostgresUnitOfWork(pool, cache).restaurant(unknown) is None and unknown not in cache
