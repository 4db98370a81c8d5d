"""The channels an order can be given right now, kept fresh for the daemons that assign orders.

The registry (enabled channels) comes from PostgreSQL: reloaded at once on `NOTIFY uoom_channels`
(sent by `uoom channels add/set`), and after `registry_ttl_s` as a safety net. The live state (each
channel's in-flight load, the operator's weights, the composite ranking) comes from Redis, re-read
at most every `redis_ttl_s`; while Redis cannot be read, the last known state is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import asyncpg
import redis.asyncio as aioredis

from uoom import channels as registry
from uoom import rankings
from uoom.domain.channels import Channel, Weights
from uoom.errors import describe

log = logging.getLogger(__name__)
REGISTRY_TTL_SECONDS = 30.0  # a safety net: registry changes also arrive by NOTIFY
REDIS_TTL_SECONDS = 0.5  # load, weights and ranking are re-read at most this often
REDIS_TIMEOUT_SECONDS = 0.05  # a slow Redis costs an assignment this much at most
RELEASE_TIMEOUT_SECONDS = 1.0
NEVER = float("-inf")  # the time of a read not done yet


@dataclass(frozen=True, slots=True)
class LiveView:
    """Enabled channels with their live load, the weights, and the composite ranking (channel
    ids, best first). `redis_ok` False: load, weights and ranking are the last known ones."""

    channels: tuple[Channel, ...]
    weights: Weights
    ranking: tuple[str, ...]
    redis_ok: bool

    def ranked(self) -> list[Channel]:
        """The enabled channels of the ranking, best first."""
        by_id = {c.id: c for c in self.channels}
        return [by_id[i] for i in self.ranking if i in by_id]


class Health(Protocol):
    """Told of every Redis read (a daemon's dependency tracker decides what to log)."""

    def ok(self) -> None: ...

    def failed(self, reason: BaseException | str) -> None: ...


class LiveChannels:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        *,
        redis_health: Health | None = None,
        registry_ttl_s: float = REGISTRY_TTL_SECONDS,
        redis_ttl_s: float = REDIS_TTL_SECONDS,
    ) -> None:
        self.pool, self.redis = pool, redis
        self.health = redis_health or _LogOutages()
        self.registry_ttl_s, self.redis_ttl_s = registry_ttl_s, redis_ttl_s
        self._channels: list[Channel] = []
        self._registry_at = NEVER
        self._loads: dict[str, int] = {}
        self._weights = Weights()
        self._ranking: list[str] = []
        self._redis_at = NEVER
        self._view: LiveView | None = None
        self.redis_ok = True
        self.redis_error: str | None = None

    def invalidate(self) -> None:
        """Reload the registry at the next read."""
        self._registry_at = NEVER

    async def listen(self, stack: contextlib.AsyncExitStack, on_change: Callable[[], None] | None = None) -> None:
        """Invalidate on every `NOTIFY uoom_channels` (then call `on_change`) until `stack` closes.
        Holds one connection of the pool; if it is lost, the registry TTL still reloads."""
        conn = await self.pool.acquire()

        def changed(*_: object) -> None:
            self.invalidate()
            if on_change is not None:
                on_change()

        async def stop() -> None:
            # Bounded: the server may be gone (a pool then replaces the connection it gets back).
            with contextlib.suppress(Exception):
                async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
                    await conn.remove_listener(registry.CHANGED, changed)
            with contextlib.suppress(Exception):
                await self.pool.release(conn, timeout=RELEASE_TIMEOUT_SECONDS)

        stack.push_async_callback(stop)
        await conn.add_listener(registry.CHANGED, changed)

    async def current(self, *, fresh: bool = False) -> LiveView:
        """The view, the registry reloaded if stale; `fresh` re-reads Redis whatever its age."""
        now = time.monotonic()
        view = self._view
        if now - self._registry_at > self.registry_ttl_s:
            self._channels = await registry.enabled_channels(self.pool)
            self._registry_at, view = now, None
        if fresh or now - self._redis_at > self.redis_ttl_s:
            self._redis_at, view = now, None
            await self._read_redis()
        if view is None:
            loads = self._loads
            channels = tuple(replace(c, load=loads[c.id]) if c.id in loads else c for c in self._channels)
            view = self._view = LiveView(channels, self._weights, tuple(self._ranking), self.redis_ok)
        return view

    async def _read_redis(self) -> None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
                self._loads, self._weights, self._ranking = await rankings.live_state(self.redis)
        except (aioredis.RedisError, OSError, TimeoutError, ValueError) as exc:
            self.redis_ok, self.redis_error = False, describe(exc)
            self.health.failed(exc)
        else:
            self.redis_ok, self.redis_error = True, None
            self.health.ok()


class _LogOutages:
    """Without a daemon's tracker: one warning when Redis cannot be read, one line when it can again."""

    def __init__(self) -> None:
        self.down = False

    def ok(self) -> None:
        if self.down:
            log.info("Redis is back: channel load, weights and ranking are live again")
        self.down = False

    def failed(self, reason: BaseException | str) -> None:
        if not self.down:
            text = reason if isinstance(reason, str) else describe(reason)
            log.warning("Redis unavailable (%s): using the last known channel load, weights and ranking", text)
        self.down = True
