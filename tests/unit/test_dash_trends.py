"""The dashboard's memory (tui/trends.py): what the sparklines get, and rates from two readings."""

from __future__ import annotations

import threading

import pytest

from tui.trends import KEEP_SECONDS, OUTBOX, P99, Trends


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_series_gives_the_last_n_values_oldest_first_and_skips_unknown_readings(clock: Clock) -> None:
    trends = Trends(clock=clock)
    for value in (1.0, None, 2.0, 3.0, None, 4.0):
        trends.add("p99.status", value)
        clock.now += 1
    assert trends.series("p99.status", 3) == [2.0, 3.0, 4.0]
    assert trends.series("p99.status", 100) == [1.0, 2.0, 3.0, 4.0]
    assert trends.series("p99.status", 0) == []
    assert trends.series("never.recorded", 10) == []
    assert trends.latest("p99.status") == 4.0
    assert trends.latest("never.recorded") is None


def test_readings_older_than_fifteen_minutes_are_forgotten(clock: Clock) -> None:
    trends = Trends(clock=clock)
    trends.add("rps", 1.0)
    clock.now += KEEP_SECONDS - 1
    trends.add("rps", 2.0)
    assert trends.series("rps", 10) == [1.0, 2.0]
    clock.now += 2
    trends.add("rps", 3.0)
    assert trends.series("rps", 10) == [2.0, 3.0]


def test_a_counter_rate_needs_two_readings_in_the_window(clock: Clock) -> None:
    trends = Trends(clock=clock)
    trends.add("c", 100)
    assert trends.rate("c") is None and trends.increase("c") is None
    clock.now += 10
    trends.add("c", 130)
    assert trends.rate("c") == pytest.approx(3.0)
    clock.now += 30
    trends.add("c", 160)
    assert trends.increase("c") == (60.0, 40.0)
    clock.now += 31  # the readings of 1000 and 1010 fall out of the trailing 60 s
    trends.add("c", 160)
    assert trends.increase("c") == (0.0, 31.0)
    clock.now += 120
    trends.add("c", 170)
    assert trends.rate("c") is None  # alone in its window


def test_a_counter_that_went_down_was_reset_and_counts_from_zero(clock: Clock) -> None:
    trends = Trends(clock=clock)
    for value in (50, 60, 5, 15):  # the daemon restarted after 60
        trends.add("c", value)
        clock.now += 10
    grown, seconds = trends.increase("c") or (0, 0)
    assert (grown, seconds) == (10 + 5 + 10, 30)


def test_ratio_is_the_share_of_growth_and_none_without_traffic(clock: Clock) -> None:
    trends = Trends(clock=clock)
    for errors, every in ((1, 100), (3, 140), (3, 140)):
        trends.add("errors", errors)
        trends.add("all", every)
        clock.now += 5
    assert trends.ratio("errors", "all") == pytest.approx(2 / 40)
    quiet = Trends(clock=clock)
    for _ in range(2):
        quiet.add("errors", 0)
        quiet.add("all", 7)
        clock.now += 1
    assert quiet.ratio("errors", "all") is None


def test_series_names_are_the_ones_the_widgets_draw() -> None:
    assert {g: f"p99.{g}" for g in ("create", "status", "batch", "other")} == P99
    assert set(OUTBOX.values()) == {"outbox.pending", "outbox.lag", "outbox.publishRate", "outbox.inBackoff",
                                    "outbox.deadLetters", "outbox.ackP99"}  # fmt: skip


def test_reading_while_another_thread_records_is_safe() -> None:
    trends = Trends(keep=0.01)  # a short memory: the writer adds as fast as it can
    stop = threading.Event()

    def record() -> None:
        while not stop.is_set():
            trends.add("rps", 1.0)

    writer = threading.Thread(target=record)
    writer.start()
    try:
        for _ in range(500):
            trends.series("rps", 900)
            trends.rate("rps")
    finally:
        stop.set()
        writer.join()
