"""The rankings in Redis (per-criterion ZSETs and the weighted composite), rebuilt from the live
channels every second, and at once when the channel registry changes. A Redis that comes back
empty gets the operator's weights back from PostgreSQL first (`rankings.restore_weights`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import redis.asyncio as aioredis

from daemons.background import Background
from daemons.kit.logs import describe
from uoom import rankings
from uoom.live_channels import LiveChannels

log = logging.getLogger("uoom.optimizer.rankings")
INTERVAL_SECONDS = 1.0


class RankingPublisher(Background):
    def __init__(self, live: LiveChannels, redis: aioredis.Redis, pool: asyncpg.Pool,
                 interval_s: float = INTERVAL_SECONDS) -> None:  # fmt: skip
        self.live, self.redis, self.pool, self.interval_s = live, redis, pool, interval_s
        self._now = asyncio.Event()

    def publish_now(self) -> None:
        """Publish without waiting for the next tick (e.g. on a registry change)."""
        self._now.set()

    async def run(self) -> None:
        while True:
            self._now.clear()
            try:
                if await rankings.restore_weights(self.pool, self.redis):
                    log.warning("Redis had lost the operator's ranking weights: restored from PostgreSQL")
                view = await self.live.current(fresh=True)
                await rankings.refresh(self.redis, view.channels, view.weights)
            except Exception as exc:  # noqa: BLE001 - rankings are advisory; the next tick retries
                log.debug("ranking refresh failed: %s", describe(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), self.interval_s)
