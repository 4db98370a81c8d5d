"""The relay's numbers, through the daemon kit: Prometheus under the seed's names, and the
`relay` section of the metrics JSON (docs/metrics.md) read from the same counters."""

from __future__ import annotations

from typing import Any

from daemons.kit.metrics import DaemonMetrics, by_label, total
from daemons.kit.runtime import LoopWatch
from uoom.stores.outbox import OutboxEvent, OutboxStatus

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
PROJECTED = ("applied", "current", "stale", "skipped")


class RelayMetrics:
    """One per relay (no global state: tests run several relays in one process)."""

    def __init__(self) -> None:
        m = self.kit = DaemonMetrics("relay")
        self.registry = m.registry
        self.processed = m.counter(
            "outbox_events_processed", "Events published to Kafka (acknowledged) and marked processed"
        )
        self.retries = m.counter("outbox_publish_retries", "Failed publish attempts scheduled for a retry")
        self.dead_lettered = m.counter("outbox_events_dead_lettered", "Events moved to the dead-letter table and topic")
        self.batches = m.counter("outbox_batches", "Claimed batches")
        latency = m.histogram(
            "outbox_publish_latency_seconds",
            "Event written (its transaction's time) to Kafka acknowledgement",
            LATENCY_BUCKETS,
        )
        self.commit_to_ack = m.latency("commitToAck", latency)
        self.pending = m.gauge("outbox_events_pending", "Events not published yet")
        self.lag = m.gauge("outbox_lag_seconds", "Age of the oldest unpublished event")
        self.in_backoff = m.gauge("outbox_events_in_backoff", "Unpublished events waiting to be retried")
        self.dead_letters = m.gauge("outbox_dead_letters", "Dead letters not replayed yet")
        self.kafka_up = m.gauge("relay_kafka_up", "1 while Kafka acknowledges without stalling")
        self.projector_events = m.counter(
            "projector_orders",
            "Order snapshots projected, by result: applied, current (nothing to write), stale, skipped",
            ("result",),
        )
        for result in PROJECTED:
            self.projector_events.labels(result)
        self.projector_errors = m.counter("projector_errors", "Failed read-model writes (retried)")
        self._projector_lag = 0
        m.gauge("projector_lag_messages", "Events on Kafka not yet projected", reads=lambda: self._projector_lag)
        self._projector_seen: dict[str, int] = {}
        self.projector_running = False
        self.kafka_stalled_for: float | None = None
        self.outbox: OutboxStatus | None = None
        self.loop = LoopWatch(m)  # started and stopped by the relay's run()

    def on_batch(self, published: list[OutboxEvent], acked_at: float, retries: int, dead: int) -> None:
        self.batches.inc()
        if published:
            self.processed.inc(len(published))
            for event in published:
                self.commit_to_ack.observe_ms(max(0.0, acked_at - event.enqueued_at.timestamp()) * 1000)
        if retries:
            self.retries.inc(retries)
        if dead:
            self.dead_lettered.inc(dead)

    def on_stall(self, seconds: float | None) -> None:
        self.kafka_stalled_for = seconds
        self.kafka_up.set(0 if seconds else 1)

    def on_outbox(self, status: OutboxStatus) -> None:
        self.outbox = status
        self.pending.set(status.pending)
        self.lag.set(status.lag_seconds)
        self.in_backoff.set(status.in_backoff)
        self.dead_letters.set(status.dead_letters_open)

    def on_projector(self, report: dict[str, int]) -> None:
        """The projector process's running totals; a restarted process starts again from 0."""
        for name, value in report.items():
            if name == "lag":
                self._projector_lag = value
                continue
            if name not in (*PROJECTED, "errors"):
                continue
            seen = self._projector_seen.get(name, 0)
            delta = value - seen if value >= seen else value
            self._projector_seen[name] = value
            if delta:
                counter = self.projector_errors if name == "errors" else self.projector_events.labels(name)
                counter.inc(delta)

    @property
    def totals(self) -> dict[str, int]:
        """What was published, retried, dead-lettered, and how many batches (the counters' values)."""
        return {"processed": total(self.processed), "retries": total(self.retries),
                "deadLettered": total(self.dead_lettered), "batches": total(self.batches)}  # fmt: skip

    @property
    def projected(self) -> dict[str, int]:
        return {**by_label(self.projector_events), "errors": total(self.projector_errors), "lag": self._projector_lag}

    def prometheus(self) -> bytes:
        return self.kit.prometheus()

    def document(self, *, status: str, problems: list[str], dependencies: dict[str, dict[str, Any]],
                 topic: str) -> dict[str, Any]:  # fmt: skip
        outbox = self.outbox
        return self.kit.document(status=status, problems=problems, dependencies=dependencies, section={
            "topic": topic,
            "outbox": None if outbox is None else {
                "pending": outbox.pending,
                "retrying": outbox.retrying,
                "inBackoff": outbox.in_backoff,
                "lagSeconds": round(outbox.lag_seconds, 3),
                "deadLetters": outbox.dead_letters_open,
                "lastPublishedAt": outbox.last_published_at.isoformat() if outbox.last_published_at else None,
            },
            "published": self.totals,
            "kafka": {"stalledSeconds": self.kafka_stalled_for},
            "projector": {**self.projected, "running": self.projector_running},
        })  # fmt: skip
