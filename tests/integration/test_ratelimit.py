"""The API's shared rate limiter against a real Redis: two workers share one limit."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from daemons.api.ratelimit import SharedRateLimiter


def frozen_clock() -> float:
    """Every call in one second: the limit's window rolls each second, and a roll between two
    steps of a test would reset what it counts."""
    return 1_800_000_000.5


async def test_two_workers_share_one_limit_within_a_sync_interval(stack, settings) -> None:
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    key = f"test-{uuid.uuid4()}"
    first, second = SharedRateLimiter(client, 10, clock=frozen_clock), SharedRateLimiter(client, 10, clock=frozen_clock)
    try:
        # Before a sync each worker only knows its own count: together they may overshoot.
        assert sum(first.allow(key) for _ in range(6)) == 6
        assert sum(second.allow(key) for _ in range(6)) == 6
        await first.sync()
        await second.sync()
        await first.sync()  # first learns second's count only at its next sync
        assert not first.allow(key)
        assert not second.allow(key)
    finally:
        await client.aclose()


async def test_a_worker_alone_stops_at_the_limit(stack, settings) -> None:
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    limiter = SharedRateLimiter(client, 5, clock=frozen_clock)
    try:
        key = f"test-{uuid.uuid4()}"
        assert [limiter.allow(key) for _ in range(7)] == [True] * 5 + [False] * 2
    finally:
        await client.aclose()


async def test_a_burst_during_a_sync_round_trip_still_counts_what_was_pushed(stack, settings) -> None:
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    limiter = SharedRateLimiter(client, 5, clock=frozen_clock)
    key = f"test-{uuid.uuid4()}"
    try:
        assert [limiter.allow(key) for _ in range(3)] == [True] * 3
        syncing = asyncio.create_task(limiter.sync())
        await asyncio.sleep(0)  # the sync has pushed the 3 and waits for Redis's answer
        assert not syncing.done()
        assert [limiter.allow(key) for _ in range(4)] == [True, True, False, False]
        await syncing
        assert not limiter.allow(key)
    finally:
        await client.aclose()


async def test_redis_down_keeps_the_limit_per_worker() -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = SharedRateLimiter(client, 3, clock=frozen_clock)
    key = "k"
    try:
        assert [limiter.allow(key) for _ in range(3)] == [True] * 3
        await limiter.sync()
        assert limiter.redis_failures == 1
        assert not limiter.allow(key)
    finally:
        await client.aclose()
