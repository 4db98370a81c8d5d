"""The optimizer's circuit breaker: it opens on a failing optimizer, not on a moment's hiccup.

Closed, it opens when the calls of the last `window_s` seconds (or the last 2 x `threshold`
calls, when those are fewer) hold at least `threshold` failures and at least half of them failed.
A dead or hung optimizer fails every call: the breaker opens about half a window after it died
(after `threshold` calls when orders trickle, as a count-in-a-row breaker does); but a busy
two-core machine that holds the API's or the optimizer's event loop for a tenth of a second
times out the ten calls then in flight together, and a count-in-a-row breaker (purgatory's) took
those ten of a thousand for an outage and sent every order to the fallback for `recovery_s`
(bench/reports/platform-trips.md).
Open, calls are refused until `recovery_s` have passed; then one trial call goes through: its
success closes the breaker with a clean window, its failure opens it again.

Written by hand: the breaker libraries at hand (purgatory, pybreaker, aiobreaker) count failures
in a row only.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Literal

State = Literal["closed", "opened", "half-opened"]
FAILING_SHARE = 0.5  # at least this share of the window's calls failed: the optimizer, not a hiccup


class BreakerOpen(Exception):
    """The call was not made: the breaker is open (or its one trial call is under way)."""


class RateBreaker:
    def __init__(self, threshold: int, recovery_s: float, window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.threshold, self.recovery_s, self.window_s, self.clock = threshold, recovery_s, window_s, clock
        self.state: State = "closed"
        self._calls: deque[tuple[float, bool]] = deque()  # (when, failed), the window's calls
        self._failures = 0
        self._opened_at = 0.0

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Guard one call: BreakerOpen when it may not be made; an exception out of the block is a
        failure, a cancellation neither (a trial cut short lets the next call try)."""
        if not self._admit():
            raise BreakerOpen(self.state)
        try:
            yield
        except Exception:
            self._record(failed=True)
            raise
        except BaseException:
            if self.state == "half-opened":
                self.state = "opened"  # recovery_s have passed: the next call is the trial
            raise
        self._record(failed=False)

    def _admit(self) -> bool:
        if self.state == "closed":
            return True
        if self.state == "opened" and self.clock() - self._opened_at >= self.recovery_s:
            self.state = "half-opened"
            return True
        return False

    def _record(self, *, failed: bool) -> None:
        now = self.clock()
        if self.state == "opened":  # a call made before it opened: its outcome changes nothing now
            return
        if self.state == "half-opened":
            self._calls.clear()
            self._failures = 0
            if failed:
                self.state, self._opened_at = "opened", now
            else:
                self.state = "closed"
            return
        self._calls.append((now, failed))
        self._failures += failed
        # the last 2 x threshold calls count whatever their age: at a trickle of orders a dead
        # optimizer still opens the breaker after `threshold` failures
        while len(self._calls) > 2 * self.threshold and self._calls[0][0] < now - self.window_s:
            self._failures -= self._calls.popleft()[1]
        if self._failures >= self.threshold and self._failures >= FAILING_SHARE * len(self._calls):
            self.state, self._opened_at = "opened", now
            self._calls.clear()
            self._failures = 0
