"""Rolling re-optimization against real PostgreSQL and Redis, in a database of its own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from daemons.optimizer.reoptimizer import Reoptimizer
from uoom import demo, migrate
from uoom.live_channels import LiveChannels
from uoom.stores.postgres import create_pool

RESTAURANT_ID, _, LAT, LON = demo.restaurants()[0]


@pytest.fixture
async def world(scratch_dsn, settings, private_redis_url):
    await migrate.up(scratch_dsn)
    local = settings.model_copy(update={"database_url": SecretStr(scratch_dsn), "dispatch_interval": 3600})
    pool = await create_pool(local)
    redis = aioredis.from_url(private_redis_url)
    async with pool.acquire() as conn:
        await demo.load(conn)
    yield local, pool, redis
    await pool.close()
    await redis.aclose()


async def place(pool: asyncpg.Pool, channel: str, cost: str, eta_s: int, status: str = "CONFIRMED") -> uuid.UUID:
    order_id = uuid.uuid4()
    now = datetime.now(UTC)
    await pool.execute(
        """INSERT INTO orders (id, customer_id, restaurant_id, status, items, delivery_location, total,
               estimated_delivery_time, channel_id, delivery_cost, eta_seconds, created_at, updated_at)
           VALUES ($1, $2, $3, $4, '[]', $5, 20, $6, $7, $8, $9, $10, $10)""",
        order_id, uuid.uuid4(), RESTAURANT_ID, status,
        {"latitude": LAT + 0.01, "longitude": LON, "street": "x", "city": "y", "postalCode": "z"},
        now + timedelta(seconds=eta_s), channel, Decimal(cost), eta_s, now,
    )  # fmt: skip
    return order_id


async def test_a_costly_assignment_is_moved_with_its_event_in_one_transaction(world) -> None:
    settings, pool, redis = world
    costly = await place(pool, "partner-premium", "9.11", 1500)
    reoptimizer = Reoptimizer(settings, pool, LiveChannels(pool, redis))
    moves = await reoptimizer.round()
    assert [m.order_id for m in moves] == [str(costly)]
    row = await pool.fetchrow("SELECT channel_id, version, assignment_source FROM orders WHERE id = $1", costly)
    assert row["channel_id"] != "partner-premium" and row["channel_id"] == moves[0].to_channel_id
    assert (row["version"], row["assignment_source"]) == (2, "reoptimized")
    event = await pool.fetchrow(
        "SELECT type, aggregate_version, data FROM outbox_events WHERE aggregate_id = $1", costly
    )
    assert (event["type"], event["aggregate_version"]) == ("order.channel_reassigned", 2)
    assert (event["data"]["from"], event["data"]["to"]) == ("partner-premium", row["channel_id"])
    assert event["data"]["order"]["channelId"] == row["channel_id"]


async def test_nothing_moves_without_a_gain_above_the_threshold(world) -> None:
    settings, pool, redis = world
    first = Reoptimizer(settings, pool, LiveChannels(pool, redis))
    costly = await place(pool, "partner-premium", "9.11", 1500)
    await first.round()
    after_first = await pool.fetchval("SELECT count(*) FROM outbox_events")
    # The same orders again: already at their best, so no churn and no new event.
    assert await first.round() == []
    assert await pool.fetchval("SELECT count(*) FROM outbox_events") == after_first
    assert await pool.fetchval("SELECT version FROM orders WHERE id = $1", costly) == 2


async def test_picked_up_orders_are_never_moved(world) -> None:
    settings, pool, redis = world
    gone = await place(pool, "partner-premium", "9.11", 1500, status="PICKED_UP")
    assert await Reoptimizer(settings, pool, LiveChannels(pool, redis)).round() == []
    assert await pool.fetchval("SELECT channel_id FROM orders WHERE id = $1", gone) == "partner-premium"
