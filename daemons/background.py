"""Loops that live as long as their daemon, and Kafka reading that survives broker outages."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer


class Background(ABC):
    """`start()` runs `run()` as a task; `stop()` cancels it and waits for it to end."""

    _task: asyncio.Task[None] | None = None

    @abstractmethod
    async def run(self) -> None: ...

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def consume_forever(
    make_consumer: Callable[[], AIOKafkaConsumer],
    read: Callable[[AIOKafkaConsumer], Awaitable[None]],
    log: logging.Logger,
) -> None:
    """Start a consumer and hand it to `read`; on any failure, reconnect with backoff (1 s -> 30 s)."""
    delay = 1.0
    while True:
        consumer = make_consumer()
        try:
            await consumer.start()
            delay = 1.0
            await read(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged and retried: the broker may be restarting
            log.warning("%s interrupted (%s); reconnecting in %.0f s", log.name, type(exc).__name__, delay)
        finally:
            await consumer.stop()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)
