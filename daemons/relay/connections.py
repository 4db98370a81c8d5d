"""The relay's two connections: the asyncpg pool and the Kafka publisher.

Why apart from the daemon: a relay started before its services (or during an outage) just waits
for them, and a producer the broker left unusable is replaced while the other workers go on; that
waiting and replacing is one concern, whatever the workers do with the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from daemons.relay.metrics import RelayMetrics
from daemons.relay.publisher import Publisher
from daemons.relay.wakeup import pause
from uoom.config import Settings
from uoom.stores import kafka
from uoom.stores.postgres import create_pool

log = logging.getLogger("uoom.relay")
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Connections:
    def __init__(self, settings: Settings, metrics: RelayMetrics, stopping: asyncio.Event) -> None:
        self.settings, self.metrics, self.stopping = settings, metrics, stopping
        self.pool: asyncpg.Pool | None = None
        self.publisher: Publisher | None = None
        self.db_error: str | None = None  # the last PostgreSQL failure, until a query succeeds
        self._producer_lock = asyncio.Lock()

    async def connect(self) -> bool:
        """Open the pool and the producer, waiting for PostgreSQL and Kafka as long as it takes.
        False if the relay was stopped meanwhile."""
        delay = 0.5
        while not self.stopping.is_set():
            try:
                if self.pool is None:
                    self.pool = await create_pool(
                        self.settings, min_size=1, max_size=self.settings.relay_concurrency + 2
                    )
                if self.publisher is None:
                    self.publisher = await self._new_publisher()
                return True
            except (*DB_ERRORS, KafkaError) as exc:
                log.warning("waiting for services (%s: %s)", type(exc).__name__, exc)
                await pause(self.stopping, delay)
                delay = min(delay * 2, 10.0)
        return False

    async def _new_publisher(self) -> Publisher:
        producer = kafka.producer(self.settings)
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self.metrics.on_stall(None)
        return Publisher(producer, self.settings.kafka_topic, self.settings.kafka_dlq_topic, self.metrics.on_stall)

    async def replace_producer(self, broken: Publisher) -> None:
        async with self._producer_lock:
            if self.publisher is not broken:
                return  # another worker replaced it already
            self.publisher = None
            await _stop_producer(broken.producer)
            await self.connect()

    async def close(self) -> None:
        if self.publisher is not None:
            await _stop_producer(self.publisher.producer)
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), 5)
            except (TimeoutError, *DB_ERRORS):
                self.pool.terminate()


async def _stop_producer(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5)
    except (KafkaError, OSError, TimeoutError) as exc:  # unacknowledged events stay pending
        log.warning("Kafka producer did not close cleanly: %s", exc)
