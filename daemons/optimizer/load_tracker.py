"""Channel load driven by the order events: a slot is taken when an order gets a channel, moved on
reassignment, released when the order is delivered, cancelled or failed. The two orders of a trip
share one slot, held until the last of them is delivered, cancelled or failed. A consumer group commits
offsets only after Redis applied the batch (one pipeline per fetch); the per-order holder makes a
redelivered event a no-op. Observed quality (on time or not) is kept as a moving average per channel."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from daemons.background import Background, consume_forever
from daemons.kit.health import Dependency
from uoom import rankings
from uoom.config import Settings
from uoom.domain.events import order_snapshot
from uoom.domain.orders import FINISHED_STATES, OrderStatus
from uoom.stores import kafka, redis_keys

log = logging.getLogger("uoom.optimizer.load_tracker")
GROUP = "uoom-optimizer-load"
QUALITY_ALPHA = 0.05  # weight of one delivery in the on-time moving average


class LoadTracker(Background):
    def __init__(self, settings: Settings, redis: aioredis.Redis, kafka: Dependency | None = None) -> None:
        self.settings, self.redis = settings, redis
        self.kafka = kafka or Dependency("Kafka", log)
        self.applied = 0

    async def run(self) -> None:
        def make() -> AIOKafkaConsumer:
            return kafka.consumer(self.settings, self.settings.kafka_topic, group_id=GROUP, **kafka.FOLLOWER_FETCH)

        async def read(consumer: AIOKafkaConsumer) -> None:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                await self.apply_all([m.value for messages in batches.values() for m in messages])
                if batches:
                    await consumer.commit()  # only after Redis applied them: a crash replays, never skips

        await consume_forever(make, read, log, self.kafka)

    async def apply(self, raw: bytes | None) -> None:
        await self.apply_all([raw])

    async def apply_all(self, raws: Sequence[bytes | None]) -> None:
        """A fetch's events, in their order, in one Redis round trip (partitions are per order, so
        one order's events keep their order). An event that is no order event is skipped."""
        moves, delivered = [], []
        for raw in raws:
            try:
                event: dict[str, Any] = orjson.loads(raw or b"")
            except orjson.JSONDecodeError:
                continue
            order = order_snapshot(event.get("data") or {})
            if order is None:
                continue
            status = OrderStatus(order["status"])
            holder = None if status in FINISHED_STATES else order.get("channelId")
            # guarded by the order's version: an older event (a replayed dead letter) changes nothing
            version, trip = int(order.get("version") or 0), order.get("tripId")
            moves.append(rankings.LoadMove(order["id"], holder, version, trip))  # a trip: one slot
            delivered.append(order if status is OrderStatus.DELIVERED and order.get("channelId") else None)
        for moved, order in zip(await rankings.move_loads(self.redis, moves), delivered, strict=True):
            if moved:
                self.applied += 1
                if order is not None:
                    await self._observe_quality(order)

    async def _observe_quality(self, order: dict[str, Any]) -> None:
        promised = order.get("estimatedDeliveryTime")
        if not promised:
            return
        delivered = datetime.fromisoformat(order["updatedAt"])
        on_time = 1.0 if delivered <= datetime.fromisoformat(promised) else 0.0
        key = redis_keys.OBSERVED_QUALITY
        current = await self.redis.hget(key, order["channelId"])
        value = on_time if current is None else (1 - QUALITY_ALPHA) * float(current) + QUALITY_ALPHA * on_time
        await self.redis.hset(key, order["channelId"], value)
