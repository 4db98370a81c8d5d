"""What a solve needs, kept fresh: enabled channels (PostgreSQL, reloaded on change), their
in-flight load and the weights (Redis), and the rankings published back to Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import asyncpg
import redis.asyncio as aioredis

from uoom import channels as registry
from uoom import rankings
from uoom.assignment import Channel, Weights

log = logging.getLogger("uoom.optimizer.state")
REDIS_TTL_SECONDS = 0.5  # loads and weights are re-read at most this often
CHANNELS_TTL_SECONDS = 30.0  # a safety net: channel changes also arrive by NOTIFY


class ChannelState:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
        self.pool, self.redis = pool, redis
        self._channels: list[Channel] = []
        self._channels_at = 0.0
        self._loads: dict[str, int] = {}
        self.weights = Weights()
        self._redis_at = 0.0
        self.redis_ok = True

    def invalidate(self) -> None:
        self._channels_at = 0.0

    async def current(self) -> tuple[list[Channel], Weights]:
        """Channels with their live load, and the weights; Redis trouble keeps the last known."""
        now = time.monotonic()
        if now - self._channels_at > CHANNELS_TTL_SECONDS:
            self._channels = await registry.enabled(self.pool)
            self._channels_at = now
        if now - self._redis_at > REDIS_TTL_SECONDS:
            self._redis_at = now
            try:
                async with asyncio.timeout(0.05):
                    self._loads = await rankings.loads(self.redis)
                    self.weights = await rankings.get_weights(self.redis)
                self.redis_ok = True
            except (aioredis.RedisError, OSError, TimeoutError, ValueError) as exc:
                if self.redis_ok:
                    log.warning("Redis unavailable (%s): solving with the last known load and weights", exc)
                self.redis_ok = False
        return [replace(c, load=self._loads.get(c.id, 0)) for c in self._channels], self.weights

    async def publish_rankings(self) -> None:
        self._redis_at = 0.0
        channels, weights = await self.current()
        await rankings.refresh(self.redis, channels, weights)
