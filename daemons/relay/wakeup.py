"""Waking the relay: PostgreSQL NOTIFY at commit, with the poll as the safety net; and sleeping
unless the relay stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator

import asyncpg

log = logging.getLogger("uoom.relay")
CHANNEL = "uoom_outbox"  # the outbox trigger's pg_notify channel (uoom/migrations/0001_orders_and_outbox.sql)
KEEPALIVE_SECONDS = 30.0


class Doorbell:
    """Wakes one idle worker per ring. A ring while nobody waits is kept, so a worker that
    goes idle just after an event committed claims again at once instead of sleeping a poll.

    A commit's ring while a worker is busy with a batch (begun less than `BUSY_RING_S` ago)
    wakes nobody: that worker looks again when its batch ends and takes every event committed
    meanwhile in one batch. At a steady trickle, waking an idle peer per commit made every
    batch one event long, and each paid the claim, the record and their round trips alone."""

    BUSY_RING_S = 0.05  # a batch slower than this (a Kafka stall) no longer holds the others back

    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._missed = False
        self._batches_since: list[float] = []  # when each batch in progress began (monotonic)
        self.rings = 0  # how many commits were announced so far

    def ring(self) -> None:
        """A commit: wake an idle worker unless a busy one will look again soon."""
        started = self._batches_since
        if started and time.monotonic() - min(started) < self.BUSY_RING_S:
            self.rings += 1
            self._missed = True
            return
        self._wake(everyone=False)

    def ring_peer(self) -> None:
        """A full batch: there is probably more, so wake an idle worker whatever is busy."""
        self._wake(everyone=False)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Around a worker's batch: its claim sees every commit rung before it began."""
        started = time.monotonic()
        self._missed = False
        self._batches_since.append(started)
        try:
            yield
        finally:
            self._batches_since.remove(started)

    def ring_all(self) -> None:
        self._wake(everyone=True)

    def _wake(self, *, everyone: bool) -> None:
        self.rings += 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return
        self._missed = True  # kept for a worker that goes idle next

    async def wait(self, seconds: float) -> None:
        if self._missed:
            self._missed = False
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)


async def listen(dsn: str, doorbell: Doorbell, stopping: asyncio.Event, connected: asyncio.Event) -> None:
    """Hold a LISTEN connection, reconnecting with backoff; ring on every notification and
    after every (re)connect, since notifications sent while we were away are gone."""
    delay = 0.5
    while not stopping.is_set():
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("LISTEN connection failed (%s); polling until it is back", exc)
            await pause(stopping, delay)
            delay = min(delay * 2, 10.0)
            continue
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _, lost=lost: lost.set())
        try:
            await conn.add_listener(CHANNEL, lambda *_: doorbell.ring())
            connected.set()
            delay = 0.5
            doorbell.ring()
            while not (stopping.is_set() or lost.is_set()):
                await _first(stopping, lost, seconds=KEEPALIVE_SECONDS)
                if not (stopping.is_set() or lost.is_set()):
                    await conn.execute("SELECT 1")  # a silently dead link shows up here
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("LISTEN connection lost (%s); reconnecting", exc)
        finally:
            connected.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if the relay is stopping meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _first(*events: asyncio.Event, seconds: float) -> None:
    tasks = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
