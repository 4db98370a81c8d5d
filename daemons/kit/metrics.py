"""One metrics helper per daemon: a prometheus-client registry, exact rolling windows, and one
JSON document (docs/metrics.md) built from the same objects the Prometheus exposition reads.

No number is kept twice: a JSON total is the value of a Prometheus counter or histogram count,
read through the collector interface; only the percentiles, which Prometheus cannot give
exactly, come from the rolling windows.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from sortedcontainers import SortedList

if TYPE_CHECKING:
    from daemons.kit.health import Dependencies

WINDOW_SECONDS = 60.0
Clock = Callable[[], float]


class RollingWindow:
    """The exact samples of the last `seconds`. Arrival order lives in a deque (the oldest expire
    first), the same values in a SortedList (any rank in O(log n)): a summary reads a few ranks
    instead of sorting the window, so a scrape costs the same at 100 or 120,000 samples."""

    def __init__(self, seconds: float = WINDOW_SECONDS, clock: Clock = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._since = clock()
        self._arrivals: deque[tuple[float, float]] = deque()
        self._ordered: SortedList = SortedList()

    def add(self, value: float) -> None:
        now = self._clock()
        self._arrivals.append((now, value))
        self._ordered.add(value)
        self._expire(now)

    def _expire(self, now: float) -> None:
        horizon = now - self.seconds
        arrivals, ordered = self._arrivals, self._ordered
        while arrivals and arrivals[0][0] < horizon:
            ordered.remove(arrivals.popleft()[1])

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._ordered)

    def percentile(self, p: float) -> float | None:
        """Nearest rank: always one of the samples, never an interpolation."""
        self._expire(self._clock())
        return _rank(self._ordered, p)

    def summary(self) -> dict[str, float | int | None]:
        """count, ratePerSecond (over the window, or the time since the window was created),
        p50, p95, p99 and max of the samples in the window."""
        now = self._clock()
        self._expire(now)
        ordered = self._ordered
        span = min(self.seconds, max(1.0, now - self._since))
        return {
            "count": len(ordered),
            "ratePerSecond": round(len(ordered) / span, 3),
            "p50": _rank(ordered, 50),
            "p95": _rank(ordered, 95),
            "p99": _rank(ordered, 99),
            "max": _round(ordered[-1]) if ordered else None,
        }


def _rank(ordered: SortedList, p: float) -> float | None:
    if not ordered:
        return None
    return _round(ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1])


def _round(value: float) -> float:
    return round(float(value), 3)


def samples(metric: MetricWrapperBase, suffix: str) -> Iterator[tuple[dict[str, str], float]]:
    """(labels, value) of a metric's samples named `<name><suffix>`, through the collector
    interface (a labelled child gives its own samples)."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith(suffix):
                yield sample.labels, sample.value


def total(metric: Counter | Histogram) -> int:
    """A counter's value, or how many observations a histogram took (summed over label sets)."""
    suffix = "_count" if isinstance(metric, Histogram) else "_total"
    return int(sum(value for _, value in samples(metric, suffix)))


def by_label(counter: Counter, *, skip_zero: bool = False) -> dict[str, int]:
    """A counter with one label as {label value: count}; label sets created but never counted
    are kept (at 0) unless `skip_zero`."""
    found = {}
    for labels, value in samples(counter, "_total"):
        if value or not skip_zero:
            found[next(iter(labels.values()))] = int(value)
    return dict(sorted(found.items()))


class Latency:
    """One timed thing: an exact window for the JSON percentiles and a Prometheus histogram
    (in its own unit) whose count is the JSON total."""

    def __init__(self, histogram: Histogram, unit_per_ms: float, window: RollingWindow) -> None:
        self.histogram, self.unit_per_ms, self.window = histogram, unit_per_ms, window

    def observe_ms(self, ms: float) -> None:
        self.window.add(ms)
        self.histogram.observe(ms * self.unit_per_ms)

    @contextlib.contextmanager
    def time(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe_ms((time.perf_counter() - started) * 1000)

    def summary(self) -> dict[str, float | int | None]:
        return {"total": total(self.histogram), **self.window.summary()}


class DaemonMetrics:
    """The metrics of one daemon process: its own registry (no global state, so tests can run
    several daemons in one process), the instruments registered through it, its latencies, and
    the JSON document of docs/metrics.md."""

    def __init__(self, service: str, *, window_seconds: float = WINDOW_SECONDS, clock: Clock = time.monotonic) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.latencies: dict[str, Latency] = {}
        self.window_seconds, self._clock = window_seconds, clock
        self.started_at = datetime.now(UTC)
        self._started = clock()
        self.instance = f"{socket.gethostname()}:{os.getpid()}"

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = (), *,
              reads: Callable[[], float] | None = None) -> Gauge:  # fmt: skip
        """A gauge; with `reads`, one whose value is read from the daemon's state at each scrape."""
        gauge = Gauge(name, doc, labels, registry=self.registry)
        if reads is not None:
            gauge.set_function(reads)
        return gauge

    def counter_reading(self, name: str, doc: str, reads: Callable[[], float | Mapping[str, float]],
                        label: str | None = None) -> None:  # fmt: skip
        """A counter another object keeps (an int it only ever increments, or a dict of them by
        `label`), exposed at each scrape as it is: one number, no copy to keep in step."""
        self.registry.register(_ReadCounter(name, doc, reads, label))

    def histogram(self, name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> Histogram:
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def latency(self, key: str, histogram: Histogram, *, unit_per_ms: float = 0.001) -> Latency:
        """The entry `key` of the JSON `latency` map, observed into `histogram` (a labelled child,
        or a histogram without labels) whose unit is `unit_per_ms` per millisecond."""
        found = self.latencies.get(key)
        if found is None:
            window = RollingWindow(self.window_seconds, self._clock)
            found = self.latencies[key] = Latency(histogram, unit_per_ms, window)
        return found

    def window(self) -> RollingWindow:
        """A window for a distribution that is not a time (batch sizes, ...)."""
        return RollingWindow(self.window_seconds, self._clock)

    def prometheus(self) -> bytes:
        return generate_latest(self.registry)

    def document(self, *, status: str, problems: list[str], dependencies: dict[str, dict[str, Any]],
                 section: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        """The JSON every daemon's metrics endpoint answers (docs/metrics.md): the common part,
        then this daemon's own section under its service name."""
        return {
            "service": self.service,
            "version": VERSION,
            "python": platform.python_version(),
            "instance": self.instance,
            "startedAt": self.started_at.isoformat(timespec="seconds"),
            "uptimeSeconds": round(self._clock() - self._started, 1),
            "status": status,
            "problems": problems,
            "dependencies": dependencies,
            "latency": {key: latency.summary() for key, latency in sorted(self.latencies.items())},
            self.service: section,
        }


class _ReadCounter(Collector):
    def __init__(self, name: str, doc: str, reads: Callable[[], float | Mapping[str, float]],
                 label: str | None) -> None:  # fmt: skip
        self.name, self.doc, self.reads, self.label = name, doc, reads, label

    def describe(self) -> list[CounterMetricFamily]:
        return [CounterMetricFamily(self.name, self.doc, labels=[self.label] if self.label else None)]

    def collect(self) -> Iterator[CounterMetricFamily]:
        value = self.reads()
        if isinstance(value, Mapping):
            family = CounterMetricFamily(self.name, self.doc, labels=[self.label or "name"])
            for key, count in sorted(value.items()):
                family.add_metric([key], count)
        else:
            family = CounterMetricFamily(self.name, self.doc, value=value)
        yield family


async def health_document(metrics: DaemonMetrics, dependencies: Dependencies, section: dict[str, Any], *,
                          problems: list[str] | None = None, ready: bool = True) -> dict[str, Any]:  # fmt: skip
    """The metrics JSON of a daemon whose health is its dependencies (probed now if due) plus
    `problems` of its own; `starting` while a dependency has not come up yet since the start."""
    await dependencies.refresh()
    found = [*dependencies.problems(), *(problems or [])]
    ready = ready and not dependencies.starting()
    return metrics.document(status=status(ready, found), problems=found, dependencies=dependencies.as_json(),
                            section=section)  # fmt: skip


def status(ready: bool, problems: list[str]) -> str:
    """starting (not serving yet), degraded (serving, something is wrong) or ok."""
    if not ready:
        return "starting"
    return "degraded" if problems else "ok"


def _version() -> str:
    try:
        return metadata.version("uoom")
    except metadata.PackageNotFoundError:
        return "unknown"


VERSION = _version()
