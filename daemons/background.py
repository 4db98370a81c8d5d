"""Loops that live as long as their daemon, and Kafka reading that survives broker outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from daemons.kit.health import Dependency

ASSIGNMENT_CHECK_SECONDS = 1.0
ASSIGNMENT_GRACE_SECONDS = 10.0


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


async def rounds_as_leader(pool: Any, lock_id: int, every_s: float, work: Callable[[], Awaitable[object]],
                           log: logging.Logger, what: str) -> None:  # fmt: skip
    """Every `every_s`, `work()` in one process at a time across replicas and workers: a process
    that does not get the advisory lock `lock_id` skips the round. A failed round is logged as
    `what` and the next one comes."""
    while True:
        await asyncio.sleep(every_s)
        try:
            # A transaction's lock: it ends with the transaction whatever happens, so the connection
            # never goes back to the pool still holding it (the pool does not reset session state:
            # uoom/stores/postgres.py).
            async with pool.acquire() as leader, leader.transaction():
                if await leader.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_id):
                    await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", what)


async def consume_forever(
    make_consumer: Callable[[], AIOKafkaConsumer],
    read: Callable[[AIOKafkaConsumer], Awaitable[None]],
    log: logging.Logger,
    kafka: Dependency | None = None,
) -> None:
    """Start a consumer and hand it to `read`; on any failure, reconnect with backoff (1 s -> 30 s).

    `kafka` is up once the consumer has partitions: a broker still starting (or a group
    coordinator not elected yet) is waited for quietly, one that stays away is reported once."""
    kafka = kafka or Dependency("Kafka", log)
    delay = 1.0
    while True:
        consumer = make_consumer()
        watch: asyncio.Task[None] | None = None
        try:
            await consumer.start()
            watch = asyncio.create_task(_until_assigned(consumer, kafka))
            delay = 1.0
            await read(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported and retried: the broker may be restarting
            kafka.failed(exc)
        finally:
            if watch is not None:
                watch.cancel()
            with contextlib.suppress(Exception):
                await consumer.stop()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


async def _until_assigned(consumer: AIOKafkaConsumer, kafka: Dependency) -> None:
    """A group join takes a few seconds (the broker's initial rebalance delay is 3 s): only a
    consumer still without partitions after ASSIGNMENT_GRACE_SECONDS counts as a failure."""
    waited = 0.0
    while not consumer.assignment():
        if waited >= ASSIGNMENT_GRACE_SECONDS:
            kafka.failed(f"no partitions assigned after {waited:.0f} s (group coordinator or topic not available)")
        await asyncio.sleep(ASSIGNMENT_CHECK_SECONDS)
        waited += ASSIGNMENT_CHECK_SECONDS
    kafka.ok()
