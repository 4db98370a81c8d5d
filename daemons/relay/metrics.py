"""The relay's numbers: Prometheus (the seed's names) and the JSON summary's exact percentiles."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from daemons.relay.policy import OutboxEvent
from uoom.metrics import RollingWindow
from uoom.relay_outbox import OutboxStatus

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class RelayMetrics:
    """One registry per relay (no global state: tests run several relays in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.processed = Counter(
            "outbox_events_processed", "Events published to Kafka (acknowledged) and marked processed", registry=r
        )
        self.retries = Counter("outbox_publish_retries", "Failed publish attempts scheduled for a retry", registry=r)
        self.dead_lettered = Counter(
            "outbox_events_dead_lettered", "Events moved to the dead-letter table and topic", registry=r
        )
        self.batches = Counter("outbox_batches", "Claimed batches", registry=r)
        self.latency = Histogram(
            "outbox_publish_latency_seconds",
            "Event written (its transaction's time) to Kafka acknowledgement",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.pending = Gauge("outbox_events_pending", "Events not published yet", registry=r)
        self.lag = Gauge("outbox_lag_seconds", "Age of the oldest unpublished event", registry=r)
        self.in_backoff = Gauge("outbox_events_in_backoff", "Unpublished events waiting to be retried", registry=r)
        self.dead_letters = Gauge("outbox_dead_letters", "Dead letters not replayed yet", registry=r)
        self.kafka_up = Gauge("relay_kafka_up", "1 while Kafka acknowledges without stalling", registry=r)
        self.projector_events = Counter(
            "projector_orders",
            "Order snapshots projected, by result: applied, current (nothing to write), stale, skipped",
            ["result"],
            registry=r,
        )
        self.projector_errors = Counter("projector_errors", "Failed read-model writes (retried)", registry=r)
        self.projector_lag = Gauge("projector_lag_messages", "Events on Kafka not yet projected", registry=r)
        self.window = RollingWindow(60.0)
        self.started = time.monotonic()
        self.totals = {"processed": 0, "retries": 0, "deadLettered": 0, "batches": 0}
        self.projected = {"applied": 0, "current": 0, "stale": 0, "skipped": 0, "errors": 0, "lag": 0}
        self._projector_seen: dict[str, int] = {}
        self.projector_running = False
        self.kafka_stalled_for: float | None = None
        self.outbox: OutboxStatus | None = None

    def on_batch(self, published: list[OutboxEvent], acked_at: float, retries: int, dead: int) -> None:
        self.batches.inc()
        self.totals["batches"] += 1
        if published:
            self.processed.inc(len(published))
            self.totals["processed"] += len(published)
            for event in published:
                seconds = max(0.0, acked_at - event.created_at.timestamp())
                self.latency.observe(seconds)
                self.window.add(seconds * 1000)
        if retries:
            self.retries.inc(retries)
            self.totals["retries"] += retries
        if dead:
            self.dead_lettered.inc(dead)
            self.totals["deadLettered"] += dead

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
            if name not in self.projected:
                continue
            if name == "lag":
                self.projected["lag"] = value
                self.projector_lag.set(value)
                continue
            seen = self._projector_seen.get(name, 0)
            delta = value - seen if value >= seen else value
            self._projector_seen[name] = value
            if delta:
                self.projected[name] += delta
                if name == "errors":
                    self.projector_errors.inc(delta)
                else:
                    self.projector_events.labels(name).inc(delta)

    def prometheus(self) -> bytes:
        return generate_latest(self.registry)

    def summary(self) -> dict[str, Any]:
        outbox = self.outbox
        return {
            "uptimeSeconds": round(time.monotonic() - self.started, 1),
            "outbox": None
            if outbox is None
            else {
                "pending": outbox.pending,
                "retrying": outbox.retrying,
                "inBackoff": outbox.in_backoff,
                "lagSeconds": round(outbox.lag_seconds, 3),
                "deadLetters": outbox.dead_letters_open,
                "lastPublishedAt": outbox.last_published_at.isoformat() if outbox.last_published_at else None,
            },
            "published": dict(self.totals),
            "publishLatencyMs": self.window.summary(),
            "kafka": {"stalledSeconds": self.kafka_stalled_for},
            "projector": {**self.projected, "running": self.projector_running},
        }
