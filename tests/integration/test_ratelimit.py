"""The API's shared rate limiter against a real Redis: workers lease slices of each second's budget,
so a burst across several of them admits at most the limit."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest
import redis.asyncio as aioredis

from daemons.api.ratelimit import SharedRateLimiter
from uoom.config import Settings


def frozen_clock() -> float:
    """Every call in one second: the limit's window rolls each second, and a roll between two
    steps of a test would reset what it counts."""
    return 1_800_000_000.5


async def allow(limiter: SharedRateLimiter, key: str) -> bool:
    admitted = limiter.allow(key)
    return bool(await admitted) if inspect.isawaitable(admitted) else bool(admitted)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    yield client
    await client.aclose()


async def _workers(redis: aioredis.Redis, count: int, limit: int) -> list[SharedRateLimiter]:
    workers = [SharedRateLimiter(redis, limit, clock=frozen_clock) for _ in range(count)]
    for worker in workers:
        worker.start()
    return workers


@pytest.mark.parametrize(("workers", "limit", "spread_s"), [(2, 50, 0.0), (3, 100, 0.0), (4, 100, 0.3), (3, 5, 0.1)])
async def test_a_burst_across_workers_admits_at_most_the_limit(
    stack: object, redis: aioredis.Redis, workers: int, limit: int, spread_s: float
) -> None:
    key = f"test-{uuid.uuid4()}"
    limiters = await _workers(redis, workers, limit)
    burst = 5 * limit

    async def one(i: int) -> bool:
        await asyncio.sleep(spread_s * i / burst)  # 0: all at once; else evenly over spread_s
        return await allow(limiters[i % workers], key)

    try:
        admitted = sum(await asyncio.gather(*(one(i) for i in range(burst))))
    finally:
        for limiter in limiters:
            await limiter.stop()
    print(f"{workers} workers, limit {limit}/s, burst {burst} over {spread_s} s: admitted {admitted}")
    assert admitted <= limit, f"{workers} workers admitted {admitted} of a burst of {burst} at {limit}/s"
    # not starved either: what the others leased and did not use is at most one slice each
    assert admitted >= limit - workers * limiters[0].slice, admitted


async def test_a_worker_alone_stops_at_the_limit(stack: object, redis: aioredis.Redis) -> None:
    limiter = SharedRateLimiter(redis, 5, clock=frozen_clock)
    key = f"test-{uuid.uuid4()}"
    assert [await allow(limiter, key) for _ in range(7)] == [True] * 5 + [False] * 2


async def test_steady_traffic_leases_a_slice_per_round_trip_and_does_not_wait_on_redis(
    stack: object, redis: aioredis.Redis
) -> None:
    limiter = SharedRateLimiter(redis, 1_000, clock=frozen_clock)
    limiter.start()
    key = f"test-{uuid.uuid4()}"
    waited = 0
    try:
        for _ in range(500):
            if not _completes_at_once(limiter.allow(key)):
                waited += 1
                await allow(limiter, key)
            await asyncio.sleep(0.001)  # steady traffic, below the limit
    finally:
        await limiter.stop()
    assert waited <= 1, f"{waited} requests waited for Redis"  # the first lease of the second
    assert limiter.leases <= 500 / limiter.slice + 2, limiter.leases


async def test_the_next_second_is_leased_ahead_so_its_first_requests_do_not_wait(
    stack: object, redis: aioredis.Redis
) -> None:
    now = [1_800_000_000.1]
    limiter = SharedRateLimiter(redis, 1_000, clock=lambda: now[0])
    key = f"test-{uuid.uuid4()}"
    assert await allow(limiter, key)
    now[0] = 1_800_000_000.97  # near the end of the second: the loop leases the next one
    await limiter.sync()
    await asyncio.sleep(0.05)  # the lease's round trip, well within the lead of 0.1 s
    now[0] = 1_800_000_001.01
    assert _completes_at_once(limiter.allow(key)) is True


async def test_redis_down_keeps_the_limit_per_worker() -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = SharedRateLimiter(client, 3, clock=frozen_clock)
    try:
        assert [await allow(limiter, "k") for _ in range(5)] == [True] * 3 + [False] * 2
        assert limiter.redis_failures >= 1
    finally:
        await client.aclose()


def _completes_at_once(call: Any) -> bool | None:
    """The call's answer if it needs no wait (no Redis round trip); None if it would wait."""
    if not isinstance(call, Coroutine):
        return bool(call)
    try:
        call.send(None)
    except StopIteration as stop:
        return bool(stop.value)
    call.close()
    return None
