"""The relay's work: batch workers (claim, publish, record in one transaction) and pruning.

Why apart from the daemon: this is what the relay does between start and stop, and the part a
reader checks for the delivery guarantees. Each of `relay_concurrency` workers claims a batch in
its own transaction; an idle worker sleeps until a NOTIFY, the earliest retry this relay
scheduled, or the poll interval, whichever comes first.
"""

from __future__ import annotations

import asyncio
import logging
import time

from daemons.relay.connections import DB_ERRORS, Connections
from daemons.relay.metrics import RelayMetrics
from daemons.relay.policy import PRODUCER_BROKEN, decide
from daemons.relay.wakeup import Doorbell, pause
from uoom.config import Settings
from uoom.stores import outbox

log = logging.getLogger("uoom.relay")
# A batch's rows stay locked, and its transaction holds a lock on the outbox table, while Kafka
# is asked to acknowledge it. Kafka gone, the producer would wait for it as long as the outage
# lasts, and a migration waiting behind that table lock would queue every order write behind it.
# So a batch not acknowledged in this long is given up: rolled back, its rows pending again, the
# producer (and what it still buffers) replaced once Kafka answers. A send that lands later is a
# duplicate with the same event id; first arrivals keep per-order order, since an event is sent
# only after the one before it was acknowledged.
PUBLISH_HOLD_SECONDS = 10.0


class _Abandoned(Exception):
    """Kafka did not acknowledge the batch in PUBLISH_HOLD_SECONDS; it was rolled back."""


class Workers:
    def __init__(self, settings: Settings, connections: Connections, doorbell: Doorbell, metrics: RelayMetrics,
                 stopping: asyncio.Event) -> None:  # fmt: skip
        self.settings, self.connections, self.doorbell = settings, connections, doorbell
        self.metrics, self.stopping = metrics, stopping
        self._retry_due: list[float] = []  # monotonic times when retries this relay scheduled fall due

    async def work(self) -> None:
        """One worker: batches until the relay stops; a failure costs a pause, never the worker."""
        delay = 0.5
        while not self.stopping.is_set():
            rings = self.doorbell.rings
            try:
                with self.doorbell.batch():
                    claimed, outage = await self._batch()
                delay = 0.5
            except DB_ERRORS as exc:
                self.connections.db_error = f"{type(exc).__name__}: {exc}"
                log.warning("PostgreSQL problem (%s); retrying in %.1f s", self.connections.db_error, delay)
                await pause(self.stopping, delay)
                delay = min(delay * 2, 10.0)
                continue
            except Exception:  # a bug must not silently take a worker away
                log.exception("batch failed; its rows stay pending; retrying in %.1f s", delay)
                await pause(self.stopping, delay)
                delay = min(delay * 2, 10.0)
                continue
            self.connections.db_error = None
            if outage:
                await pause(self.stopping, delay)
                delay = min(delay * 2, 10.0)
            elif claimed >= self.settings.relay_batch_size:
                self.doorbell.ring_peer()  # probably more: let an idle peer start on it
            elif claimed and self.doorbell.rings != rings:
                # An event committed while this batch ran may belong to one of its orders: no
                # worker could claim it while we held that order, and its ring is spent. Look again.
                continue
            else:
                # Everything due was claimed; what commits from now on rings the doorbell (kept
                # if nobody listens), so sleep until then, the next retry, or the poll.
                await self.doorbell.wait(self._idle_timeout())
                if self.settings.relay_gather_ms:
                    # At a steady trickle each commit rang alone, and a batch of one paid the
                    # claim, the record and their round trips for one event.
                    await pause(self.stopping, self.settings.relay_gather_ms / 1000)

    async def _batch(self) -> tuple[int, bool]:
        """Claim, publish, record — one transaction. (claimed, Kafka/producer outage seen)."""
        pool, publisher = self.connections.pool, self.connections.publisher
        assert pool is not None
        if publisher is None:
            return 0, True
        size = self.settings.relay_batch_size
        try:
            async with pool.acquire() as conn, conn.transaction():
                events = await outbox.claim(conn, size, size)
                if not events:
                    return 0, False
                try:
                    outcome = await asyncio.wait_for(publisher.publish(events), PUBLISH_HOLD_SECONDS)
                except TimeoutError:
                    raise _Abandoned from None
                decisions = decide(
                    outcome.failed, self.settings.relay_max_attempts, self.settings.relay_retry_base_seconds
                )
                if decisions.dead:
                    await publisher.publish_dead(decisions.dead)
                await outbox.record(conn, outcome.published, decisions.retries, decisions.dead)
        except _Abandoned:
            log.warning(
                "Kafka has not acknowledged a batch of %d events for %.0f s: released them (they stay pending); "
                "waiting for Kafka with a new producer",
                len(events),
                PUBLISH_HOLD_SECONDS,
            )
            await self.connections.replace_producer(publisher)
            return 0, True
        self.metrics.on_batch(outcome.published, outcome.acked_at, len(decisions.retries), len(decisions.dead))
        if decisions.retries:
            self._retry_due.append(time.monotonic() + min(delay for _, delay, _ in decisions.retries))
        for event, error in decisions.dead:
            log.error("event %s (%s of %s) dead-lettered: %s", event.id, event.type, event.aggregate_id, error)
        if decisions.outage:
            event, exc = decisions.outage[0]
            log.warning("Kafka refused %d events for now (%s); they stay pending", len(decisions.outage), exc)
        if outcome.broker_refused or any(isinstance(exc, PRODUCER_BROKEN) for _, exc in decisions.outage):
            await self.connections.replace_producer(publisher)
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

    async def prune_periodically(self) -> None:
        """Delete published rows past the retention every `relay_prune_interval` (0: never)."""
        interval = self.settings.relay_prune_interval
        if not interval:
            return
        await pause(self.stopping, min(interval, 30.0))
        while not self.stopping.is_set():
            if (pool := self.connections.pool) is not None:
                try:
                    deleted = await outbox.prune(pool, self.settings.outbox_retention)
                    if deleted:
                        log.info(
                            "pruned %d published outbox rows older than %s", deleted, self.settings.outbox_retention
                        )
                except DB_ERRORS as exc:
                    log.warning("prune failed (%s); next try in %.0f s", exc, interval)
            await pause(self.stopping, interval)
