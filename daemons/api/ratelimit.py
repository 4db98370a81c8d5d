"""Per-key rate limit shared through Redis, without a Redis round trip on the request path.

Each worker counts locally and, every `sync_seconds`, adds its counts to the key's one-second
window in Redis (INCRBY) and reads back the total of every worker and replica. A request is allowed
while (last known total + local unflushed count) stays under the limit, so the limit holds across
processes to within one sync interval of traffic. Written here because the libraries at hand
(pyrate-limiter's Redis bucket, aiolimiter) either pay a round trip per request or are per-process.
When Redis is down the limit is enforced per worker only, and counted as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from uoom.stores import redis_keys

log = logging.getLogger("uoom.api.ratelimit")


class SharedRateLimiter:
    def __init__(self, redis: aioredis.Redis, limit_per_second: int, sync_seconds: float = 0.05,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.redis, self.limit, self.sync_seconds, self.clock = redis, limit_per_second, sync_seconds, clock
        self._second = 0
        self._unflushed: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}  # pushed to Redis, total not read back yet
        self._known_total: dict[str, int] = {}
        self.redis_failures = 0
        self._task: asyncio.Task[None] | None = None

    def _roll(self, now: float) -> int:
        second = int(now)
        if second != self._second:
            self._second = second
            self._unflushed.clear()
            self._in_flight.clear()
            self._known_total.clear()
        return second

    def allow(self, key_id: str) -> bool:
        self._roll(self.clock())
        used = self._known_total.get(key_id, 0) + self._in_flight.get(key_id, 0) + self._unflushed.get(key_id, 0)
        if used >= self.limit:
            return False
        self._unflushed[key_id] = self._unflushed.get(key_id, 0) + 1
        return True

    async def sync(self) -> None:
        """Push local counts to Redis and learn everyone's totals for this second."""
        second = self._roll(self.clock())
        pending, self._unflushed = self._unflushed, {}
        for key_id in self._known_total:  # INCRBY 0 reads what the other workers added
            pending.setdefault(key_id, 0)
        if not pending:
            return
        # Until Redis answers, what was just pushed still counts: without this, a burst arriving
        # during the round trip would see neither the local count nor the shared total.
        self._in_flight = pending
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key_id, count in pending.items():
                    window = redis_keys.rate_limit_key(key_id, second)
                    pipe.incrby(window, count)
                    pipe.expire(window, 2)
                results = await pipe.execute()
        except (aioredis.RedisError, OSError, TimeoutError):
            self.redis_failures += 1
            self._in_flight = {}
            if second == self._second:  # keep enforcing this worker's own share
                for key_id, count in pending.items():
                    self._known_total[key_id] = self._known_total.get(key_id, 0) + count
            return
        self._in_flight = {}
        if second == self._second:
            for key_id, total in zip(pending, results[::2], strict=True):
                self._known_total[key_id] = int(total)

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
        await self.sync()
