"""Percentiles from an HDR histogram (HdrHistogram_py): constant memory and cost per sample,
three significant digits at every magnitude, where a sorted list of every sample costs memory in
proportion to the run and a hand-rolled rank is easy to get subtly wrong."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hdrh.histogram import HdrHistogram

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
SIGNIFICANT_DIGITS = 3


class Histogram:
    """Non-negative values recorded at `resolution` (the smallest difference kept, in the values'
    own unit) up to `highest`. The max is kept exactly beside the histogram."""

    def __init__(self, resolution: float = 0.001, highest: float = 3_600_000.0) -> None:
        self.resolution = resolution
        self._hdr = HdrHistogram(1, max(2, round(highest / resolution)), SIGNIFICANT_DIGITS)
        self.max: float | None = None

    @classmethod
    def of(cls, values: Iterable[float], resolution: float = 1e-6, highest: float = 1e9) -> Histogram:
        histogram = cls(resolution, highest)
        for value in values:
            histogram.record(value)
        return histogram

    def record(self, value: float) -> None:
        if value < 0 or not self._hdr.record_value(round(value / self.resolution)):
            raise ValueError(f"{value} is outside the histogram's range [0, {self.highest}]")
        self.max = value if self.max is None or value > self.max else self.max

    @property
    def highest(self) -> float:
        return float(self._hdr.highest_trackable_value * self.resolution)

    @property
    def count(self) -> int:
        return int(self._hdr.get_total_count())

    def percentile(self, p: float) -> float | None:
        """The value at or below which p % of the recorded values lie (None when empty)."""
        if not self.count:
            return None
        return float(self._hdr.get_value_at_percentile(p) * self.resolution)

    def summary(self, digits: int = 3) -> dict[str, float | None]:
        """P50, P90, P99, P99.9 and the max, rounded to `digits`; None when nothing was recorded."""
        out = {name: self.percentile(p) for name, p in PERCENTILES.items()}
        out["max"] = self.max
        return {k: None if v is None else round(v, digits) for k, v in out.items()}

    def values(self) -> Iterator[float]:
        """Every recorded value as the histogram holds it (to three significant digits)."""
        for step in self._hdr.get_recorded_iterator():
            value = step.value_iterated_to * self.resolution
            for _ in range(step.count_added_in_this_iter_step):
                yield float(value)


def latency_histogram() -> Histogram:
    """Milliseconds, kept to the microsecond, up to an hour."""
    return Histogram(resolution=0.001, highest=3_600_000.0)
