"""Keeps this worker's status cache coherent with changes made elsewhere (other workers, the
optimizer's reassignments): every worker reads the order-events topic from its end, without a
consumer group, and refreshes the cached snapshots it holds. A cached status then lags a change
by the event delivery delay (commit -> relay -> Kafka -> here, the fetch waiting up to 50 ms to
take several events at once), and never by more than the
cache TTL when events stop flowing (relay or Kafka down)."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from daemons.api.statuscache import SnapshotCache
from daemons.background import Background, consume_forever
from daemons.kit.health import Dependency
from uoom.config import Settings
from uoom.domain.events import order_snapshot
from uoom.stores import kafka

log = logging.getLogger("uoom.api.cachefeed")


class CacheUpdater(Background):
    def __init__(self, settings: Settings, cache: SnapshotCache, kafka: Dependency | None = None) -> None:
        self.settings, self.cache = settings, cache
        self.kafka = kafka
        self.applied = 0
        self.last_event_at: float | None = None

    async def run(self) -> None:
        def make() -> AIOKafkaConsumer:
            return kafka.consumer(self.settings, self.settings.kafka_topic, auto_offset_reset="latest",
                                  **kafka.FOLLOWER_FETCH)  # fmt: skip

        async def read(consumer: AIOKafkaConsumer) -> None:
            async for message in consumer:
                self.apply(message.value)

        await consume_forever(make, read, log, self.kafka)

    def apply(self, raw: bytes | None) -> None:
        try:
            event: dict[str, Any] = orjson.loads(raw or b"")
        except orjson.JSONDecodeError:
            return
        snapshot = order_snapshot(event.get("data") or {})
        if snapshot and self.cache.refresh(snapshot):
            self.applied += 1
        self.last_event_at = time.time()
