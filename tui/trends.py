"""The dashboard's memory: each series' readings (monotonic time, value) over the last 15 minutes,
for the sparklines, and the rates of counters that need two readings (error rate, reassignments
per minute), taken over the trailing window of the dashboard's own readings.

Thread-safe: the sources record on their own thread while the widgets read on the UI thread.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

KEEP_SECONDS = 15 * 60.0
RATE_WINDOW_SECONDS = 60.0

# The series the widgets draw (tui/sources.py records them at every fetch).
P99 = {group: f"p99.{group}" for group in ("create", "status", "batch", "other")}
RPS = "rps"
OUTBOX = {
    "pending": "outbox.pending",
    "lag": "outbox.lag",
    "publish": "outbox.publishRate",
    "backoff": "outbox.inBackoff",
    "dead": "outbox.deadLetters",
    "ack": "outbox.ackP99",
}
SOLVE_P99 = "optimizer.solveP99"


class Trends:
    """Per-series readings, oldest first; readings older than `keep` seconds are dropped."""

    def __init__(self, keep: float = KEEP_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep, self._clock = keep, clock
        self._series: dict[str, deque[tuple[float, float]]] = {}
        self._added: dict[str, int] = {}  # readings ever recorded, per series
        self._slots: dict[tuple[str, int, float], tuple[int, int, list[float | None]]] = {}  # see slots()
        self._lock = threading.Lock()

    def add(self, name: str, value: float | None, at: float | None = None) -> None:
        """Record a reading; `None` (the source did not answer) records nothing: a gap, not a zero."""
        if value is None:
            return
        now = self._clock() if at is None else at
        with self._lock:
            readings = self._series.setdefault(name, deque())
            readings.append((now, float(value)))
            self._added[name] = self._added.get(name, 0) + 1
            horizon = now - self.keep
            while readings and readings[0][0] < horizon:
                readings.popleft()

    def series(self, name: str, points: int) -> list[float]:
        """The last `points` values of a series, oldest first (empty when it has none)."""
        if points <= 0:
            return []
        with self._lock:
            readings = self._series.get(name, ())
            return [value for _, value in list(readings)[-points:]]

    def slots(self, name: str, count: int, seconds: float | None = None) -> list[float | None]:
        """The largest reading in each of `count` equal slots of time that end now and span
        `seconds` (the whole memory by default), oldest first; None for a slot with no reading.

        The slots are fixed on the clock (slot k spans [k, k + 1) x seconds / count), not on the
        readings, so every slot but the current one stays the same until it leaves on the left:
        a sparkline drawn from them changes once a slot, not at every reading. Kept per (series,
        count, seconds) and brought up to date with the readings added since the last call."""
        if count <= 0:
            return []
        span = self.keep if seconds is None else seconds
        length = span / count
        last = math.floor(self._clock() / length)
        first = last - count + 1
        key = (name, count, span)
        with self._lock:
            readings = self._series.get(name) or deque()
            added = self._added.get(name, 0)
            cached = self._slots.get(key)
            if cached is None or cached[0] > last or added - cached[1] > len(readings):
                maxima: list[float | None] = [None] * count  # first look, or readings gone unseen: all again
                new: Iterable[tuple[float, float]] = list(readings)
            else:
                shown_last, seen, maxima = cached
                moved = last - shown_last  # slots the clock went on by: they leave on the left
                if moved:
                    maxima = maxima[moved:] + [None] * min(moved, count) if moved < count else [None] * count
                new = list(itertools.islice(reversed(readings), added - seen))
            for at, value in new:
                slot = math.floor(at / length) - first
                if 0 <= slot < count:
                    known = maxima[slot]
                    maxima[slot] = value if known is None or value > known else known
            self._slots[key] = (last, added, maxima)
            return list(maxima)

    def latest(self, name: str) -> float | None:
        with self._lock:
            readings = self._series.get(name)
            return readings[-1][1] if readings else None

    def increase(self, name: str, window: float = RATE_WINDOW_SECONDS) -> tuple[float, float] | None:
        """(how much a counter grew, over how many seconds) across its readings of the trailing
        `window`; a counter that went down was reset (its daemon restarted), and counts from 0.
        None with fewer than two readings in the window."""
        with self._lock:
            readings = self._series.get(name)
            if not readings:
                return None
            horizon = readings[-1][0] - window
            recent = [r for r in readings if r[0] >= horizon]
        if len(recent) < 2:
            return None
        grown = 0.0
        for (_, before), (_, after) in itertools.pairwise(recent):
            grown += after - before if after >= before else after
        return grown, recent[-1][0] - recent[0][0]

    def rate(self, name: str, window: float = RATE_WINDOW_SECONDS) -> float | None:
        """A counter's growth per second over the trailing `window`; None before two readings."""
        found = self.increase(name, window)
        if found is None or found[1] <= 0:
            return None
        return found[0] / found[1]

    def ratio(self, part: str, whole: str, window: float = RATE_WINDOW_SECONDS) -> float | None:
        """How much counter `part` grew against counter `whole` (5xx against all responses);
        None before two readings, or when `whole` did not grow."""
        numerator, denominator = self.increase(part, window), self.increase(whole, window)
        if numerator is None or denominator is None or denominator[0] <= 0:
            return None
        return numerator[0] / denominator[0]
