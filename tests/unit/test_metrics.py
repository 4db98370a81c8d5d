from __future__ import annotations

from uoom.metrics import RollingWindow, percentile


def test_percentiles_are_nearest_rank_samples() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) is None


def test_window_forgets_samples_older_than_its_span() -> None:
    now = [0.0]
    window = RollingWindow(seconds=60, clock=lambda: now[0])
    window.add(500.0)
    now[0] = 30.0
    window.add(1.0)
    assert window.summary()["max"] == 500.0
    now[0] = 61.0
    assert window.summary() == {"count": 1, "p50": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0}
