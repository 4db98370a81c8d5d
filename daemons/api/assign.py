"""Channel assignment at order creation: the optimizer behind a circuit breaker and a 100 ms
timeout; when it cannot answer, the best feasible channel of the Redis ranking, then the cheapest
feasible channel by the pure greedy rule, then the configured default. Never refuses an order."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from uoom import channels as channel_registry
from uoom.assignment import Channel, Order, Weights, greedy
from uoom.assignment.costs import dollars, eta_seconds
from uoom.assignment.geo import haversine_km
from uoom.config import Settings
from uoom.stores import redis_keys

log = logging.getLogger("uoom.api.assign")
CHANNELS_REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class Choice:
    channel_id: str | None
    cost: float | None
    eta_seconds: int | None
    source: str  # optimizer | ranking | greedy | default | none


class Assigner:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, redis: aioredis.Redis,
                 http: aiohttp.ClientSession) -> None:  # fmt: skip
        self.settings, self.pool, self.redis, self.http = settings, pool, redis, http
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=settings.breaker_failure_threshold,
            default_ttl=settings.breaker_recovery_seconds,
        )
        self.timeout = aiohttp.ClientTimeout(total=settings.optimizer_timeout_ms / 1000)
        self.url = settings.effective_optimizer_url.rstrip("/") + "/optimize"
        self._channels: list[Channel] = []
        self._channels_at = 0.0
        self.sources: dict[str, int] = {}
        self.breaker_state = "closed"

    async def choose(self, order_id: str, pickup: tuple[float, float], dropoff: tuple[float, float],
                     value: float, ready_in_s: float) -> Choice:  # fmt: skip
        order = Order(order_id, pickup, dropoff, value, ready_in_s)
        choice = await self._optimizer(order)
        if choice is None:
            channels = await self.channels()
            choice = await self._ranking(order, channels) or self._greedy(order, channels)
        if choice is None:
            choice = Choice(self.settings.default_channel_id or None, None, None,
                            "default" if self.settings.default_channel_id else "none")  # fmt: skip
        self.sources[choice.source] = self.sources.get(choice.source, 0) + 1
        return choice

    async def _optimizer(self, order: Order) -> Choice | None:
        body = {"orders": [{"orderId": order.order_id,
                            "pickup": {"latitude": order.pickup[0], "longitude": order.pickup[1]},
                            "dropoff": {"latitude": order.dropoff[0], "longitude": order.dropoff[1]},
                            "value": order.value, "readyAt": order.ready_at}],
                "deadlineMs": max(self.settings.optimizer_timeout_ms - 20, 5)}  # fmt: skip
        breaker = await self.breakers.get_breaker("optimizer")
        try:
            async with breaker, self.http.post(self.url, json=body, timeout=self.timeout) as response:
                response.raise_for_status()
                answer = await response.json()
        except OpenedState:
            return None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("optimizer unavailable: %s", exc)
            return None
        finally:
            self.breaker_state = breaker.context.state
        if answer.get("status") == "FALLBACK":
            return None
        for a in answer.get("assignments", []):
            if a.get("orderId") == order.order_id and a.get("channelId"):
                return Choice(a["channelId"], a.get("cost"), int(a.get("etaSeconds") or 0), "optimizer")
        return None

    async def channels(self) -> list[Channel]:
        """Enabled channels from PostgreSQL, refreshed every few seconds (they rarely change)."""
        if time.monotonic() - self._channels_at > CHANNELS_REFRESH_SECONDS:
            self._channels = await channel_registry.enabled(self.pool)
            self._channels_at = time.monotonic()
        return self._channels

    async def _ranking(self, order: Order, channels: list[Channel]) -> Choice | None:
        try:
            async with asyncio.timeout(0.05):
                ranked = await self.redis.zrevrange(redis_keys.RANK_COMPOSITE, 0, -1)
                loads = await self.redis.hgetall(redis_keys.CHANNEL_LOAD)
        except (aioredis.RedisError, OSError, TimeoutError):
            return None  # Redis down: the pure greedy rule below still assigns
        by_id = {c.id: c for c in channels}
        distance = haversine_km(order.pickup, order.dropoff)
        for raw in ranked:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            channel = by_id.get(name)
            load = int(loads.get(name.encode(), 0))
            if channel and distance <= channel.radius_km and load < channel.capacity:
                eta = eta_seconds(distance, order.ready_at, channel)
                return Choice(channel.id, round(dollars(distance, channel), 2), int(eta), "ranking")
        return None

    def _greedy(self, order: Order, channels: list[Channel]) -> Choice | None:
        if not channels:
            return None
        result = greedy([order], channels, Weights())
        (placed,) = result.assignments
        if placed.channel_id is None:
            return None
        return Choice(placed.channel_id, float(placed.cost), placed.eta_seconds, "greedy")
