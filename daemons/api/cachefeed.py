"""Keeps this worker's status cache coherent with changes made elsewhere (other workers, the
optimizer's reassignments): every worker reads the order-events topic from its end, without a
consumer group, and refreshes the cached snapshots it holds. A cached status then lags a change
by the event delivery delay (commit -> relay -> Kafka -> here), and never by more than the
cache TTL when events stop flowing (relay or Kafka down)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from daemons.api.readside import SnapshotCache
from uoom.config import Settings
from uoom.domain.events import order_snapshot

log = logging.getLogger("uoom.api.cachefeed")


class CacheFeed:
    def __init__(self, settings: Settings, cache: SnapshotCache) -> None:
        self.settings, self.cache = settings, cache
        self.applied = 0
        self.last_event_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        delay = 1.0
        while True:
            consumer = AIOKafkaConsumer(
                self.settings.kafka_topic, bootstrap_servers=self.settings.kafka_bootstrap,
                group_id=None, enable_auto_commit=False, auto_offset_reset="latest",
            )  # fmt: skip
            try:
                await consumer.start()
                delay = 1.0
                async for message in consumer:
                    self.apply(message.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the cache TTL bounds staleness meanwhile
                log.warning("cache feed interrupted (%s); retrying in %.0f s", type(exc).__name__, delay)
            finally:
                await consumer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def apply(self, raw: bytes | None) -> None:
        try:
            event: dict[str, Any] = orjson.loads(raw or b"")
        except orjson.JSONDecodeError:
            return
        snapshot = order_snapshot(event.get("data") or {})
        if snapshot and self.cache.refresh(snapshot):
            self.applied += 1
        self.last_event_at = time.time()
