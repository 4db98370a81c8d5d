"""The optimizer's circuit breaker (daemons/api/breaker.py), on a clock of our own: it opens on a
failing optimizer (every call failing, or half of them), not on a burst of timeouts among many
answers, and after its recovery time lets exactly one trial call through."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from daemons.api.breaker import BreakerOpen, RateBreaker
from tests.unit.test_metrics import Clock

THRESHOLD, RECOVERY_S, WINDOW_S = 5, 5.0, 5.0


class Boom(Exception):
    pass


def make() -> tuple[RateBreaker, Clock]:
    clock = Clock()
    return RateBreaker(THRESHOLD, RECOVERY_S, WINDOW_S, clock=clock), clock


def call(breaker: RateBreaker, *, fails: bool) -> None:
    """One guarded call that fails (Boom) or succeeds; BreakerOpen when it was not made."""
    with pytest.raises(Boom) if fails else contextlib.nullcontext(), breaker.call():
        if fails:
            raise Boom


def calls(breaker: RateBreaker, clock: Clock, *, successes: int = 0, failures: int = 0, step: float = 0.125) -> None:
    """Calls `step` apart (a binary fraction: the clock sums exactly)."""
    for fails in [False] * successes + [True] * failures:
        clock.now += step
        call(breaker, fails=fails)


def test_threshold_failures_in_a_row_open_it_as_a_dead_optimizer_does() -> None:
    breaker, clock = make()
    calls(breaker, clock, failures=THRESHOLD - 1)
    assert breaker.state == "closed"
    calls(breaker, clock, failures=1)
    assert breaker.state == "opened"
    with pytest.raises(BreakerOpen):
        call(breaker, fails=False)


def test_a_burst_of_timeouts_among_many_answers_keeps_it_closed() -> None:
    """A loop held for a tenth of a second times out the ten calls then in flight together."""
    breaker, clock = make()
    calls(breaker, clock, successes=300)
    calls(breaker, clock, failures=10)
    calls(breaker, clock, successes=300)
    assert breaker.state == "closed"


def test_half_the_calls_failing_opens_it_and_fewer_than_half_does_not() -> None:
    breaker, clock = make()
    for _ in range(20):  # 40 % failing
        calls(breaker, clock, successes=3, failures=2)
    assert breaker.state == "closed"
    for fails in [False, True, True] * 20:  # now half of the window's calls and more
        calls(breaker, clock, successes=int(not fails), failures=int(fails))
        if breaker.state == "opened":
            break
    assert breaker.state == "opened"


def test_failures_older_than_the_window_are_forgotten() -> None:
    breaker, clock = make()
    calls(breaker, clock, failures=THRESHOLD - 1)
    clock.now += WINDOW_S + 1
    calls(breaker, clock, successes=6, failures=THRESHOLD - 1)  # with the old ones: 8 of 14 failed
    assert breaker.state == "closed"
    calls(breaker, clock, failures=2)  # 6 of the window's 12
    assert breaker.state == "opened"


def test_at_a_trickle_of_orders_threshold_failures_in_a_row_still_open_it() -> None:
    """One order a minute: the window's seconds hold one call, the last 2 x threshold calls count."""
    breaker, clock = make()
    calls(breaker, clock, successes=20, step=60)
    calls(breaker, clock, failures=THRESHOLD, step=60)
    assert breaker.state == "opened"


def test_after_the_recovery_time_one_trial_goes_through_and_its_success_closes_it() -> None:
    breaker, clock = make()
    calls(breaker, clock, failures=THRESHOLD)
    clock.now += RECOVERY_S - 0.1
    with pytest.raises(BreakerOpen):
        call(breaker, fails=False)
    clock.now += 0.1
    with breaker.call():
        assert breaker.state == "half-opened"
        with pytest.raises(BreakerOpen):  # the trial is under way: nobody else
            call(breaker, fails=False)
    assert breaker.state == "closed"
    calls(breaker, clock, failures=THRESHOLD - 1)  # a clean window: the old failures do not count
    assert breaker.state == "closed"


def test_a_failed_trial_opens_it_for_another_recovery_time() -> None:
    breaker, clock = make()
    calls(breaker, clock, failures=THRESHOLD)
    clock.now += RECOVERY_S
    call(breaker, fails=True)
    assert breaker.state == "opened"
    clock.now += RECOVERY_S - 0.1
    with pytest.raises(BreakerOpen):
        call(breaker, fails=False)
    clock.now += 0.1
    call(breaker, fails=False)
    assert breaker.state == "closed"


def test_a_cancelled_trial_lets_the_next_call_try() -> None:
    """A create cut short (its client went, its request timed out) must not leave the breaker
    half-open for ever with no trial under way."""
    breaker, clock = make()
    calls(breaker, clock, failures=THRESHOLD)
    clock.now += RECOVERY_S
    with pytest.raises(asyncio.CancelledError), breaker.call():
        raise asyncio.CancelledError
    assert breaker.state == "opened"
    call(breaker, fails=False)
    assert breaker.state == "closed"


def test_calls_in_flight_when_it_opened_neither_extend_nor_end_the_open_time() -> None:
    breaker, clock = make()
    in_flight = [breaker.call() for _ in range(THRESHOLD)]
    for guard in in_flight:
        guard.__enter__()
    calls(breaker, clock, failures=THRESHOLD)  # these open it
    opened_at = clock.now
    clock.now += RECOVERY_S / 2
    for guard in in_flight:  # the older calls time out now
        guard.__exit__(Boom, Boom(), None)
    assert breaker.state == "opened"
    clock.now = opened_at + RECOVERY_S  # the recovery time counts from the opening, not from them
    call(breaker, fails=False)
    assert breaker.state == "closed"
