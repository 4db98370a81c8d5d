"""Per-key rate limit shared through Redis: each worker leases slices of a second's budget.

A key's budget for one second is one Redis counter. A worker takes a slice of it with one INCRBY
(a round trip per slice, not per request) and admits only what it holds, so however many workers
and replicas share a key, a second admits at most the limit while Redis answers: no overshoot; the
cost is an undershoot of at most one unused slice per worker. A worker leases its next slice when
half of the one it holds is used, and a key's first slice of the next second shortly before that
second starts, so steady traffic never waits for Redis; a request waits for a lease (at most
`lease_timeout`) only when its worker holds nothing, as at the start of a burst. The windows are
the seconds of the wall clock, so hosts must agree on the time (NTP) for the bound to hold across
them. Written here because the libraries at hand (pyrate-limiter's Redis bucket, aiolimiter) pay a
round trip per request or are per-process. When Redis does not answer, a worker enforces the limit
alone for the rest of that second (so N workers admit up to N times the limit), counted as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from uoom.stores import redis_keys

log = logging.getLogger("uoom.api.ratelimit")
SLICES_PER_SECOND = 20  # a slice is 1/20 of the limit: 5 % of it idle per worker at most
LEASE_TIMEOUT_SECONDS = 0.1
LEAD_SECONDS = 0.1  # lease the next second's first slice this long before it starts


@dataclass(slots=True)
class _Budget:
    """What one worker holds of one key's budget for one second."""

    held: int = 0
    used: int = 0
    exhausted: bool = False  # no more to lease this second (spent, or Redis down: held is local)
    lease: asyncio.Task[None] | None = None


class SharedRateLimiter:
    def __init__(self, redis: aioredis.Redis, limit_per_second: int, sync_seconds: float = 0.05,
                 clock: Callable[[], float] = time.time,
                 lease_timeout: float = LEASE_TIMEOUT_SECONDS) -> None:  # fmt: skip
        self.redis, self.limit, self.sync_seconds, self.clock = redis, limit_per_second, sync_seconds, clock
        self.slice = max(1, limit_per_second // SLICES_PER_SECOND)
        self.lease_timeout = lease_timeout
        self._second = 0
        self._current: dict[str, _Budget] = {}
        self._next: dict[str, _Budget] = {}  # leased ahead for second + 1
        self.redis_failures = 0
        self.leases = 0  # round trips to Redis
        self._task: asyncio.Task[None] | None = None

    def _roll(self) -> int:
        second = int(self.clock())
        if second != self._second:
            self._current = self._next if second == self._second + 1 else {}
            self._next, self._second = {}, second
        return second

    async def allow(self, key_id: str) -> bool:
        second = self._roll()
        budget = self._current.get(key_id)
        if budget is None:
            budget = self._current[key_id] = _Budget()
        while budget.used >= budget.held:
            if budget.exhausted:
                return False
            if budget.lease is None:
                budget.lease = self._lease(key_id, second, budget)
            await asyncio.shield(budget.lease)  # never raises: a failed lease makes the budget local
        budget.used += 1
        if budget.lease is None and not budget.exhausted and budget.held - budget.used <= self.slice // 2:
            budget.lease = self._lease(key_id, second, budget)
        return True

    def _lease(self, key_id: str, second: int, budget: _Budget) -> asyncio.Task[None]:
        return asyncio.create_task(self._take_slice(key_id, second, budget))

    async def _take_slice(self, key_id: str, second: int, budget: _Budget) -> None:
        window = redis_keys.rate_limit_key(key_id, second)
        try:
            async with asyncio.timeout(self.lease_timeout):
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.incrby(window, self.slice)
                    pipe.expire(window, 3)
                    total = int((await pipe.execute())[0])
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            self.redis_failures += 1
            log.debug("rate limit lease failed (%s): this worker limits alone this second", type(exc).__name__)
            budget.held, budget.exhausted = max(budget.held, self.limit), True
        else:
            self.leases += 1
            budget.held += max(0, min(self.slice, self.limit - (total - self.slice)))
            budget.exhausted = total >= self.limit
        finally:
            budget.lease = None

    async def sync(self) -> None:
        """Near the end of a second, lease the next second's first slice for the keys in use."""
        second = self._roll()
        if self.clock() - second < 1 - LEAD_SECONDS:
            return
        for key_id, budget in self._current.items():
            if budget.used and key_id not in self._next:
                ahead = self._next[key_id] = _Budget()
                ahead.lease = self._lease(key_id, second + 1, ahead)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.sync_seconds)
            await self.sync()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        leases = [b.lease for b in (*self._current.values(), *self._next.values()) if b.lease is not None]
        for lease in leases:
            lease.cancel()
        await asyncio.gather(*leases, return_exceptions=True)
