"""The daemon kit's metrics: exact rolling windows that never sort on read, and one set of numbers
behind both the JSON document and the Prometheus exposition."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from daemons.kit.metrics import DaemonMetrics, RollingWindow, by_label, status, total


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_percentiles_are_nearest_rank_samples() -> None:
    window = RollingWindow(clock=Clock())
    for v in reversed(range(1, 101)):
        window.add(float(v))
    assert window.percentile(50) == 50.0
    assert window.percentile(99) == 99.0
    assert window.percentile(100) == 100.0
    summary = window.summary()
    assert (summary["count"], summary["p50"], summary["p95"], summary["p99"], summary["max"]) == (100, 50, 95, 99, 100)
    assert RollingWindow().percentile(99) is None


def test_window_forgets_samples_older_than_its_span() -> None:
    clock = Clock()
    window = RollingWindow(seconds=60, clock=clock)
    window.add(500.0)
    clock.now = 30.0
    window.add(1.0)
    assert window.summary()["max"] == 500.0
    clock.now = 61.0
    assert window.summary() == {"count": 1, "ratePerSecond": round(1 / 60, 3), "p50": 1.0, "p95": 1.0, "p99": 1.0,
                                "max": 1.0}  # fmt: skip
    clock.now = 200.0
    assert window.summary()["count"] == 0 and window.summary()["p99"] is None


def test_expiry_keeps_duplicates_exact() -> None:
    clock = Clock()
    window = RollingWindow(seconds=10, clock=clock)
    for second in range(20):
        clock.now = float(second)
        window.add(7.0 if second % 2 else 3.0)
    # at 19 s the horizon is 9 s: the samples of 9 .. 19 s stay, each removed one took its own value
    assert len(window) == 11
    assert window.percentile(100) == 7.0 and window.percentile(1) == 3.0


def test_rate_is_counted_over_the_window_or_the_time_since_it_started() -> None:
    clock = Clock()
    window = RollingWindow(seconds=60, clock=clock)
    clock.now = 10.0
    for _ in range(50):
        window.add(1.0)
    assert window.summary()["ratePerSecond"] == 5.0  # 50 in the first 10 s
    clock.now = 65.0
    assert window.summary()["ratePerSecond"] == round(50 / 60, 3)


def test_a_summary_of_120k_samples_reads_ranks_instead_of_sorting() -> None:
    """Sorting 120,000 floats takes ~10-30 ms here; five rank reads in a SortedList take microseconds,
    the same at 100 samples or 120,000: a scrape under load no longer stalls the event loop."""
    clock = Clock()
    small, large = RollingWindow(clock=clock), RollingWindow(clock=clock)
    for i in range(120_000):
        large.add(float((i * 7919) % 120_000))
    for i in range(100):
        small.add(float(i))

    def cost(window: RollingWindow) -> float:
        started = time.perf_counter()
        for _ in range(200):
            window.summary()
        return (time.perf_counter() - started) / 200

    assert cost(large) < 0.002, cost(large)
    assert cost(large) < 20 * cost(small) + 0.0002
    assert large.summary()["p99"] == 118_799.0  # exact: the 118,800th of 0 .. 119,999


def test_json_and_prometheus_read_the_same_numbers() -> None:
    metrics = DaemonMetrics("test", clock=Clock())
    routes = metrics.histogram("request_seconds", "Requests", (0.001, 0.01, 0.1), ("route",))
    results = metrics.counter("results", "Results", ("result",))
    for result in ("ok", "failed"):
        results.labels(result)
    for i in range(30):
        metrics.latency("GET /a", routes.labels("/a")).observe_ms(float(i))
        results.labels("ok" if i % 3 else "failed").inc()
    metrics.counter_reading("kept_elsewhere", "An int another object keeps", lambda: 12)
    metrics.counter_reading("by_source", "A dict another object keeps", lambda: {"x": 2, "y": 3}, "source")

    document = metrics.document(status="ok", problems=[], dependencies={}, section={"results": by_label(results)})
    scraped = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.prometheus().decode())
        for sample in family.samples
    }
    entry = document["latency"]["GET /a"]
    assert entry["total"] == scraped[("request_seconds_count", (("route", "/a"),))] == 30 == total(routes)
    assert entry["count"] == 30 and entry["p50"] == 14.0 and entry["max"] == 29.0
    assert document["test"]["results"] == {"failed": 10, "ok": 20}
    assert scraped[("results_total", (("result", "ok"),))] == 20
    assert scraped[("results_total", (("result", "failed"),))] == 10
    assert scraped[("kept_elsewhere_total", ())] == 12
    assert scraped[("by_source_total", (("source", "y"),))] == 3


def test_the_document_has_the_common_shape() -> None:
    document = DaemonMetrics("relay").document(
        status="ok", problems=[], dependencies={"postgres": {"up": True, "error": None}}, section={"x": 1}
    )
    assert list(document) == ["service", "version", "python", "instance", "startedAt", "uptimeSeconds", "status",
                              "problems", "dependencies", "latency", "relay"]  # fmt: skip
    assert document["service"] == "relay" and document["relay"] == {"x": 1}


def test_status_is_starting_until_ready_then_degraded_by_any_problem() -> None:
    assert status(False, []) == "starting"
    assert status(True, []) == "ok"
    assert status(True, ["redis: TimeoutError"]) == "degraded"
