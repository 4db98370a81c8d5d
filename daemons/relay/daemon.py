"""The relay daemon: outbox -> Kafka, in order, retried, dead-lettered; plus projector and pruning.

One event loop, one asyncpg pool, one idempotent producer. `relay_concurrency` workers each claim
and publish a batch in its own transaction; idle workers sleep until a NOTIFY, the earliest
retry, or the poll interval, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from daemons.relay import claim, http
from daemons.relay.metrics import RelayMetrics
from daemons.relay.policy import PRODUCER_BROKEN, decide
from daemons.relay.projector_process import run_child
from daemons.relay.publisher import Publisher
from daemons.relay.wakeup import Doorbell, listen
from uoom.config import Settings
from uoom.errors import UoomError
from uoom.relay_outbox import outbox_status, prune
from uoom.stores import kafka
from uoom.stores.postgres import create_pool

log = logging.getLogger("uoom.relay")
STOP_GRACE_SECONDS = 20.0  # below `uoom up`'s 30 s, after which it kills
STALLED_SECONDS = 10.0  # Kafka silent this long: the relay reports itself degraded
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Relay:
    def __init__(self, settings: Settings, *, projector: bool | None = None) -> None:
        self.settings = settings
        self.with_projector = settings.relay_projector if projector is None else projector
        self.metrics = RelayMetrics()
        self.doorbell = Doorbell()
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self.metrics_port: int | None = None
        self.state = "starting"
        self._stopping = asyncio.Event()
        self._listening = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._publisher: Publisher | None = None
        self._outbox_read_at = 0.0
        self._db_error: str | None = None
        self._producer_lock = asyncio.Lock()
        self._retry_due: list[float] = []  # monotonic times when retries this relay scheduled fall due

    def stop(self) -> None:
        """Ask for a graceful stop: batches in flight finish, then `run` returns."""
        if not self._stopping.is_set():
            log.info("stopping: finishing the batches in flight")
            self.state = "stopping"
            self._stopping.set()
            self.doorbell.ring_all()

    async def run(self, *, serve_metrics: bool = True) -> None:
        runner = None
        if serve_metrics:
            host, port = self.settings.relay_metrics_host, self.settings.relay_metrics_port
            try:
                runner, self.metrics_port = await http.serve(host, port, self.summary, self.prometheus)
            except OSError as exc:
                raise UoomError(
                    f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}); "
                    "another relay there? set UOOM_RELAY_METRICS_PORT"
                ) from None
            log.info("metrics on http://%s:%s%s", self.settings.relay_metrics_host, self.metrics_port, http.JSON_PATH)
        helpers: list[asyncio.Task[Any]] = []
        try:
            if self.with_projector:
                helpers.append(asyncio.create_task(self._keep("projector", self._projector)))
            if not await self._connect():
                return
            dsn = self.settings.database_url.get_secret_value()
            helpers.append(asyncio.create_task(listen(dsn, self.doorbell, self._stopping, self._listening)))
            helpers.append(asyncio.create_task(self._prune_periodically()))
            workers = [asyncio.create_task(self._work()) for _ in range(self.settings.relay_concurrency)]
            self.state = "running"
            log.info(
                "relaying outbox -> %s (%d workers, batches of %d, poll every %.1f s)",
                self.settings.kafka_topic,
                len(workers),
                self.settings.relay_batch_size,
                self.settings.relay_poll_interval,
            )
            await self._stopping.wait()
            await _finish(workers, STOP_GRACE_SECONDS, "a batch was still waiting for Kafka; it stays pending")
        finally:
            self._stopping.set()
            await _finish(helpers, 10.0, "a helper task did not stop in time")
            await self._close()
            if runner is not None:
                await runner.cleanup()
            log.info("stopped")

    # -- start-up and shutdown -------------------------------------------------------------

    async def _connect(self) -> bool:
        """Open the pool and the producer, waiting for PostgreSQL and Kafka as long as it takes:
        a relay started before its services (or during an outage) just waits. False if stopped."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                if self._pool is None:
                    self._pool = await create_pool(
                        self.settings, min_size=1, max_size=self.settings.relay_concurrency + 2
                    )
                if self._publisher is None:
                    self._publisher = await self._new_publisher()
                return True
            except (*DB_ERRORS, KafkaError) as exc:
                log.warning("waiting for services (%s: %s)", type(exc).__name__, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
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

    async def _replace_producer(self, broken: Publisher) -> None:
        async with self._producer_lock:
            if self._publisher is not broken:
                return  # another worker replaced it already
            self._publisher = None
            await _stop_producer(broken.producer)
            await self._connect()

    async def _projector(self, stopping: asyncio.Event) -> None:
        await run_child(self.settings, self.metrics, stopping)

    async def _keep(self, name: str, run: Any) -> None:
        """Run a helper until stopped, restarting it after an unexpected error."""
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await run(self._stopping)
            except Exception:
                log.exception("%s failed; restarting in %.0f s", name, delay)
                await self._pause(delay)
                delay = min(delay * 2, 30.0)

    async def _close(self) -> None:
        if self._publisher is not None:
            await _stop_producer(self._publisher.producer)
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), 5)
            except (TimeoutError, *DB_ERRORS):
                self._pool.terminate()

    # -- publishing ------------------------------------------------------------------------

    async def _work(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            rings = self.doorbell.rings
            try:
                claimed, outage = await self._batch()
                delay = 0.5
            except DB_ERRORS as exc:
                self._db_error = f"{type(exc).__name__}: {exc}"
                log.warning("PostgreSQL problem (%s); retrying in %.1f s", self._db_error, delay)
                await self._pause(delay)
                delay = min(delay * 2, 10.0)
                continue
            except Exception:  # a bug must not silently take a worker away
                log.exception("batch failed; its rows stay pending; retrying in %.1f s", delay)
                await self._pause(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._db_error = None
            if outage:
                await self._pause(delay)
                delay = min(delay * 2, 10.0)
            elif claimed >= self.settings.relay_batch_size:
                self.doorbell.ring()  # probably more: let an idle peer start on it
            elif claimed and self.doorbell.rings != rings:
                # An event committed while this batch ran may belong to one of its orders: no
                # worker could claim it while we held that order, and its ring is spent. Look again.
                continue
            else:
                # Everything due was claimed; what commits from now on rings the doorbell (kept
                # if nobody listens), so sleep until then, the next retry, or the poll.
                await self.doorbell.wait(self._idle_timeout())

    async def _batch(self) -> tuple[int, bool]:
        """Claim, publish, record — one transaction. (claimed, Kafka/producer outage seen)."""
        assert self._pool is not None
        publisher = self._publisher
        if publisher is None:
            return 0, True
        size = self.settings.relay_batch_size
        async with self._pool.acquire() as conn, conn.transaction():
            events = await claim.claim(conn, size, size)
            if not events:
                return 0, False
            outcome = await publisher.publish(events)
            decisions = decide(outcome.failed, self.settings.relay_max_attempts, self.settings.relay_retry_base_seconds)
            if decisions.dead:
                await publisher.publish_dead(decisions.dead)
            await claim.record(conn, outcome.published, decisions.retries, decisions.dead)
        self.metrics.on_batch(outcome.published, outcome.acked_at, len(decisions.retries), len(decisions.dead))
        if decisions.retries:
            self._retry_due.append(time.monotonic() + min(delay for _, delay, _ in decisions.retries))
        for event, error in decisions.dead:
            log.error("event %s (%s of %s) dead-lettered: %s", event.id, event.type, event.aggregate_id, error)
        if decisions.outage:
            event, exc = decisions.outage[0]
            log.warning("Kafka refused %d events for now (%s); they stay pending", len(decisions.outage), exc)
        if outcome.broker_refused or any(isinstance(exc, PRODUCER_BROKEN) for _, exc in decisions.outage):
            await self._replace_producer(publisher)
        return len(events), bool(decisions.outage)

    def _idle_timeout(self) -> float:
        """Until the earliest retry this relay scheduled, at most the poll interval (which also
        covers retries scheduled by a relay that died since)."""
        timeout = self.settings.relay_poll_interval
        if self._retry_due:
            now = time.monotonic()
            just_due = any(due <= now for due in self._retry_due)
            self._retry_due = [due for due in self._retry_due if due > now]
            if just_due:  # claimed a moment ago, most likely; one more look to be sure
                timeout = min(timeout, 0.05)
            elif self._retry_due:
                timeout = min(timeout, min(self._retry_due) - now + 0.005)
        return timeout

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _prune_periodically(self) -> None:
        interval = self.settings.relay_prune_interval
        if not interval:
            return
        await self._pause(min(interval, 30.0))
        while not self._stopping.is_set():
            if self._pool is not None:
                try:
                    deleted = await prune(self._pool, self.settings.outbox_retention)
                    if deleted:
                        log.info(
                            "pruned %d published outbox rows older than %s", deleted, self.settings.outbox_retention
                        )
                except DB_ERRORS as exc:
                    log.warning("prune failed (%s); next try in %.0f s", exc, interval)
            await self._pause(interval)

    # -- metrics ---------------------------------------------------------------------------

    async def _refresh_outbox(self) -> None:
        if self._pool is None or time.monotonic() - self._outbox_read_at < 1.0:
            return
        try:
            self.metrics.on_outbox(await asyncio.wait_for(outbox_status(self._pool), 2))
            self._outbox_read_at = time.monotonic()
            self._db_error = None
        except DB_ERRORS as exc:
            self._db_error = f"{type(exc).__name__}: {exc}"

    def problems(self) -> list[str]:
        found = []
        if self._pool is None:
            found.append("not connected to PostgreSQL")
        elif self._db_error:
            found.append(f"PostgreSQL: {self._db_error}")
        if self._publisher is None:
            found.append("not connected to Kafka")
        stalled = self.metrics.kafka_stalled_for
        if stalled is not None and stalled >= STALLED_SECONDS:
            found.append(f"Kafka has not acknowledged for {stalled:.0f} s")
        if self.state == "running" and not self._listening.is_set():
            found.append("LISTEN connection down (polling only)")
        if self.with_projector and self.state == "running" and not self.metrics.projector_running:
            found.append("projector process not running (restarting)")
        return found

    async def summary(self) -> dict[str, Any]:
        await self._refresh_outbox()
        problems = self.problems()
        status = self.state if self.state != "running" else ("degraded" if problems else "ok")
        return {
            "service": "uoom-relay",
            "replica": self.replica,
            "status": status,
            "problems": problems,
            "topic": self.settings.kafka_topic,
            **self.metrics.summary(),
        }

    async def prometheus(self) -> bytes:
        await self._refresh_outbox()
        return self.metrics.prometheus()


async def _finish(tasks: list[asyncio.Task[Any]], grace: float, message: str) -> None:
    """Let tasks end on their own within `grace`, then cancel the rest (a cancelled batch rolls
    back: its rows stay pending for the next relay)."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=grace)
    for task in late:
        log.warning(message)
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.error("task failed: %s: %s", type(result).__name__, result)


async def _stop_producer(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5)
    except (KafkaError, OSError, TimeoutError) as exc:  # unacknowledged events stay pending
        log.warning("Kafka producer did not close cleanly: %s", exc)
