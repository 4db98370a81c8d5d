"""Rankings and load in a real Redis."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg
import pytest
import redis.asyncio as aioredis

from uoom import rankings
from uoom.assignment import Channel, Weights
from uoom.stores import redis_keys

CHEAP_SLOW = Channel("cheap-slow", "Cheap", "partner", 10, 2.0, 0.5, 10, 15, 5, 0.80)
DEAR_FAST = Channel("dear-fast", "Dear", "partner", 10, 8.0, 1.0, 25, 3, 12, 0.97)


@pytest.fixture
async def redis(stack, private_redis_url):
    client = aioredis.from_url(private_redis_url)
    yield client
    await client.aclose()


async def order_of(redis: aioredis.Redis) -> list[str]:
    return [row["channelId"] for row in await rankings.ranking(redis)]


async def test_ranking_follows_the_weights(redis: aioredis.Redis) -> None:
    channels = [CHEAP_SLOW, DEAR_FAST]
    await rankings.refresh(redis, channels, Weights(cost=1, time=0, quality=0, capacity=0))
    assert await order_of(redis) == ["cheap-slow", "dear-fast"]
    await rankings.refresh(redis, channels, Weights(cost=0, time=0.5, quality=0.5, capacity=0))
    assert await order_of(redis) == ["dear-fast", "cheap-slow"]
    # A full channel drops when capacity counts.
    full = replace(CHEAP_SLOW, load=10)
    await rankings.refresh(redis, [full, DEAR_FAST], Weights(cost=0.4, time=0, quality=0, capacity=0.6))
    assert await order_of(redis) == ["dear-fast", "cheap-slow"]


async def test_weights_are_validated_and_normalised(redis: aioredis.Redis) -> None:
    stored = await rankings.set_weights(redis, {"cost": "2", "time": "1", "quality": "1"})
    assert (stored.cost, stored.time, stored.quality, stored.capacity) == (0.5, 0.25, 0.25, 0.0)
    assert await rankings.get_weights(redis) == stored
    with pytest.raises(ValueError, match="unknown criteria"):
        await rankings.set_weights(redis, {"speed": 1})
    with pytest.raises(ValueError, match=">= 0"):
        await rankings.set_weights(redis, {"cost": -1, "time": 1})


async def test_load_moves_once_per_order_whatever_the_redeliveries(redis: aioredis.Redis) -> None:
    order = str(uuid.uuid4())
    a, b = f"ch-{uuid.uuid4().hex[:6]}", f"ch-{uuid.uuid4().hex[:6]}"

    async def load(channel: str) -> int:
        return int(await redis.hget(redis_keys.CHANNEL_LOAD, channel) or 0)

    assert await rankings.move_load(redis, order, a)
    assert not await rankings.move_load(redis, order, a)  # the same event again
    assert (await load(a), await load(b)) == (1, 0)
    assert await rankings.move_load(redis, order, b)  # reassigned
    assert (await load(a), await load(b)) == (0, 1)
    assert await rankings.move_load(redis, order, None)  # delivered
    assert not await rankings.move_load(redis, order, None)
    assert (await load(a), await load(b)) == (0, 0)


async def test_a_batch_of_moves_applies_in_order_and_survives_a_redis_that_lost_its_scripts(
    redis: aioredis.Redis,
) -> None:
    order, other = str(uuid.uuid4()), str(uuid.uuid4())
    a, b = f"ch-{uuid.uuid4().hex[:6]}", f"ch-{uuid.uuid4().hex[:6]}"
    Move = rankings.LoadMove

    async def loads() -> tuple[int, int]:
        load = await redis.hmget(redis_keys.CHANNEL_LOAD, [a, b])
        return int(load[0] or 0), int(load[1] or 0)

    await redis.script_flush()  # as after a restart: EVALSHA is refused until the script is loaded again
    moved = await rankings.move_loads(redis, [Move(order, a, 1), Move(other, a, 1), Move(order, b, 2),
                                              Move(order, a, 1), Move(other, None, 2)])  # fmt: skip
    assert moved == [True, True, True, False, True]  # the late version-1 event of `order` moves nothing
    assert await loads() == (0, 1)
    assert await rankings.move_loads(redis, []) == []


async def test_observed_on_time_rate_replaces_the_registered_quality(redis: aioredis.Redis) -> None:
    await redis.delete(redis_keys.OBSERVED_QUALITY)
    quality_only = Weights(cost=0, time=0, quality=1, capacity=0)
    await rankings.refresh(redis, [CHEAP_SLOW, DEAR_FAST], quality_only)
    assert await order_of(redis) == ["dear-fast", "cheap-slow"]
    await redis.hset(redis_keys.OBSERVED_QUALITY, mapping={"dear-fast": 0.5, "cheap-slow": 0.99})
    try:
        await rankings.refresh(redis, [CHEAP_SLOW, DEAR_FAST], quality_only)
        assert await order_of(redis) == ["cheap-slow", "dear-fast"]
    finally:
        await redis.delete(redis_keys.OBSERVED_QUALITY)


async def test_weights_survive_a_redis_that_lost_them(redis: aioredis.Redis, scratch_dsn: str) -> None:
    from uoom import migrate

    await migrate.up(scratch_dsn)
    conn = await asyncpg.connect(scratch_dsn)
    try:
        assert not await rankings.restore_weights(conn, redis), "nothing was ever set: the defaults stand"
        chosen = await rankings.apply_weights(conn, redis, {"cost": 3, "time": 1})
        assert not await rankings.restore_weights(conn, redis), "Redis still has them: nothing to restore"
        await redis.delete(redis_keys.WEIGHTS)  # what a restarted Redis looks like
        assert await rankings.get_weights(redis) == Weights()
        assert await rankings.restore_weights(conn, redis)
        assert await rankings.get_weights(redis) == chosen
        with pytest.raises(ValueError):  # a refused value writes nothing, in either store
            await rankings.apply_weights(conn, redis, {"cost": -1})
        await redis.delete(redis_keys.WEIGHTS)
        assert await rankings.restore_weights(conn, redis)
        assert await rankings.get_weights(redis) == chosen
    finally:
        await conn.close()
