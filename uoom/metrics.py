"""Exact rolling-window percentiles for the JSON metrics; Prometheus histograms are separate.

Written here because the JSON summaries promise exact P50/P95/P99 over the last 60 s, which a
bucketed or HDR histogram only approximates; a deque of (time, value) sorted on read is exact and
cheap at our rates (a read sorts at most one window of samples).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class RollingWindow:
    def __init__(self, seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, value: float) -> None:
        now = self._clock()
        self._samples.append((now, value))
        self._trim(now)

    def _trim(self, now: float) -> None:
        horizon = now - self.seconds
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    def values(self) -> list[float]:
        self._trim(self._clock())
        return [v for _, v in self._samples]

    def summary(self) -> dict[str, float | int | None]:
        values = sorted(self.values())
        return {
            "count": len(values),
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "p99": percentile(values, 99),
            "max": values[-1] if values else None,
        }


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (exact: one of the samples)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]
