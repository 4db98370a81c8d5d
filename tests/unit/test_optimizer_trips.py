"""The optimizer's trip planner without services: the deadline rule, failures that fall back to
`solve()`, and how a plan becomes trip ids (a fake source of open trips)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from daemons.optimizer import trips as planner_module
from daemons.optimizer.batcher import MicroBatcher
from daemons.optimizer.trips import OpenTripsFeed, TripCounts, TripPlanner, plan
from uoom.assignment import Bundling, Channel, Delivery, TripOrder, Weights
from uoom.assignment.trips import route
from uoom.live_channels import LiveView
from uoom.stores.open_trips import OpenTripRow

BIKES = Channel("bikes", "Bikes", "own_fleet", 10, 3.0, 0.6, 15, 6, 4, 0.95, bundles=True)
CARS = Channel("cars", "Cars", "partner", 10, 6.0, 1.5, 25, 5, 8, 0.90)
LIVE = LiveView((BIKES, CARS), Weights(), (), redis_ok=True)
HERE = (40.754, -73.984)
BUNDLING = Bundling(frozenset({"bikes"}))


def order(i: int) -> Delivery:
    return Delivery(f"o{i}", HERE, (40.764 + 0.0005 * i, -73.984), 20.0, 600.0)


def open_trip(trip_id: str = "t-open", age_s: float = 60.0) -> OpenTripRow:
    return OpenTripRow(trip_id, "bikes", "r1", "first", HERE, (40.764, -73.984), age_s, 600.0 - age_s)


def test_two_orders_of_one_restaurant_get_one_fresh_trip_and_name_each_other() -> None:
    solved = plan([order(1), order(2)], ["r1", "r1"], [], LIVE, BUNDLING, 80.0, 25.0)
    a, b = solved.rides["o1"], solved.rides["o2"]
    assert a.trip_id == b.trip_id and (a.co_rider_id, b.co_rider_id) == ("o2", "o1")
    x, y = solved.result.assignments
    assert (a.co_rider_dollars, b.co_rider_dollars) == pytest.approx((float(y.cost), float(x.cost)), abs=0.005)
    assert solved.counts == TripCounts(pairs=1)
    assert [x.channel_id for x in solved.result.assignments] == ["bikes", "bikes"]


def test_a_join_takes_the_open_trips_id_and_its_courier() -> None:
    solved = plan([order(1)], ["r1"], [open_trip(age_s=120.0)], LIVE, BUNDLING, 80.0, 25.0)
    ride = solved.rides["o1"]
    assert (ride.trip_id, ride.co_rider_id, solved.counts) == ("t-open", "first", TripCounts(joins=1))
    assert ride.pickup_in_s == pytest.approx(600.0)  # the later of both ready times and the courier (240 s)
    # the first rider's share and delivery time in the trip: the two shares are the trip's dollars
    first = TripOrder("first", "r1", HERE, (40.764, -73.984), 480.0, 120.0)
    joiner = TripOrder("o1", "r1", HERE, order(1).dropoff, 600.0)
    trip = route(BIKES, [first, joiner], 240.0)
    (mine,) = solved.result.assignments
    assert ride.co_rider_dollars == pytest.approx(trip.shares[0]) and ride.co_rider_deliver_s == trip.deliver_s[0]
    assert float(mine.cost) + ride.co_rider_dollars == pytest.approx(trip.dollars, abs=0.005)


def test_orders_without_a_restaurant_or_on_other_channels_share_nothing() -> None:
    solved = plan([order(1), order(2)], [None, None], [], LIVE, BUNDLING, 80.0, 25.0)
    assert solved.counts == TripCounts(singles=2) and all(r.co_rider_id is None for r in solved.rides.values())
    assert len({r.trip_id for r in solved.rides.values()}) == 2
    cars_only = replace(LIVE, channels=(replace(BIKES, capacity=0), CARS))
    none = plan([order(1), order(2)], ["r1", "r1"], [], cars_only, BUNDLING, 80.0, 25.0)
    assert none.rides == {} and [a.channel_id for a in none.result.assignments] == ["cars", "cars"]


def test_no_time_left_is_the_greedy_fallback_without_trips() -> None:
    solved = plan([order(1), order(2)], ["r1", "r1"], [open_trip()], LIVE, BUNDLING, 0.0, 25.0)
    assert solved.result.status == "FALLBACK" and solved.rides == {} and solved.counts == TripCounts()


def test_a_failing_dispatch_is_answered_by_the_flow_without_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(planner_module, "dispatch", broken)
    solved = plan([order(1), order(2)], ["r1", "r1"], [], LIVE, BUNDLING, 80.0, 25.0)
    assert solved.result.status == "OPTIMAL" and solved.rides == {}
    assert [a.channel_id for a in solved.result.assignments] == ["bikes", "bikes"]


async def test_while_the_feed_cannot_read_open_trips_batches_go_on_without_joins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reads = ["fine", "broken", "broken", "fine"]

    async def source() -> list[OpenTripRow]:
        if reads.pop(0) == "broken":
            raise OSError("connection refused")
        return [open_trip()]

    feed = OpenTripsFeed(source)
    planned: list[TripCounts] = []
    planner = TripPlanner(feed, 300.0, 2700.0, planned.append)
    with caplog.at_level(logging.INFO, logger="uoom.optimizer.trips"):
        joined = []
        for _ in range(4):
            await feed.read()
            solved = await planner.solve([order(1)], ["r1"], LIVE, 40.0, 25.0, inline=True)
            joined.append(solved.rides["o1"].trip_id == "t-open")
    assert joined == [True, False, False, True]  # a failed read forgets the trips it had read before
    assert planned == [TripCounts(joins=1), TripCounts(singles=1), TripCounts(singles=1), TripCounts(joins=1)]
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]  # one line per outage, one when back


async def test_the_batcher_gives_a_late_request_no_trip_and_a_timely_one_its_trip() -> None:
    async def live() -> LiveView:
        return LIVE

    def none(_: object) -> list[OpenTripRow]:
        return []

    batcher = MicroBatcher(live, 50, 25.0, lambda r, n: None, trips=TripPlanner(none, 300.0, 2700.0))
    batcher.start()
    try:
        late = asyncio.create_task(batcher.submit([order(1)], 10, ["r1"]))  # its deadline passes in the window
        timely = asyncio.create_task(batcher.submit([order(2)], 5000, ["r1"]))
        (late_mine, late_result, late_rides), (mine, _, rides) = await late, await timely
    finally:
        await batcher.stop()
    assert late_result.status == "FALLBACK" and late_rides == {} and late_mine[0].channel_id is not None
    assert mine[0].channel_id == "bikes" and rides["o2"].co_rider_id is None


async def test_the_feed_knows_its_own_answers_before_it_reads_them_back() -> None:
    """A new single is joinable by the next order at once (no waiting for the next read); a trip
    just joined is not offered again."""
    from decimal import Decimal

    from daemons.optimizer.trips import Solved
    from uoom.assignment.model import Assignment, Result, Ride

    async def nothing() -> list[OpenTripRow]:
        return []

    feed = OpenTripsFeed(nothing)
    place = "00000000-0000-0000-0000-000000000001"
    alone = Delivery("a", (40.0, -74.0), (40.01, -74.0), 20.0, 600.0)
    other = Delivery("b", (40.0, -74.0), (40.02, -74.0), 20.0, 600.0)
    solved = Solved(
        Result((Assignment("a", "bikes", Decimal("3.00"), 900), Assignment("b", "cars", Decimal("4.00"), 900)),
               "OPTIMAL", 1.0, 0),
        {"a": Ride("trip-a", None, 600.0)}, TripCounts(singles=1),
    )  # fmt: skip
    feed.answered([alone, other], [place, place], solved)
    (row,) = feed([place])
    assert (row.trip_id, row.channel_id, row.order_id) == ("trip-a", "bikes", "a")
    assert row.ready_in_s == pytest.approx(600.0, abs=5) and row.age_s == pytest.approx(0.0, abs=5)
    joined = Solved(
        Result((Assignment("c", "bikes", Decimal("1.50"), 900),), "OPTIMAL", 1.0, 0),
        {"c": Ride("trip-a", "a", 600.0)}, TripCounts(joins=1),
    )  # fmt: skip
    feed.answered([Delivery("c", (40.0, -74.0), (40.0, -74.01), 20.0, 600.0)], [place], joined)
    assert feed([place]) == []


async def test_the_feeds_own_answers_outlive_a_read_that_started_before_their_orders_committed() -> None:
    """A read whose snapshot was taken before the answered orders committed neither forgets a new
    single nor offers again a trip just joined; once the answers are older than KEEP_ANSWERS_S,
    the database alone says what is open."""
    from decimal import Decimal

    from daemons.optimizer.trips import KEEP_ANSWERS_S, Solved
    from uoom.assignment.model import Assignment, Result, Ride

    place = "00000000-0000-0000-0000-000000000001"
    committed = replace(open_trip("t-db"), restaurant_id=place)
    snapshot: list[OpenTripRow] = [committed]

    async def database() -> list[OpenTripRow]:
        return list(snapshot)

    feed = OpenTripsFeed(database)
    await feed.read()
    single = Solved(Result((Assignment("a", "bikes", Decimal("3.00"), 900),), "OPTIMAL", 1.0, 0),
                    {"a": Ride("t-new", None, 600.0)}, TripCounts(singles=1))  # fmt: skip
    join = Solved(Result((Assignment("c", "bikes", Decimal("1.50"), 900),), "OPTIMAL", 1.0, 0),
                  {"c": Ride("t-db", "first", 600.0)}, TripCounts(joins=1))  # fmt: skip
    feed.answered([Delivery("a", HERE, (40.01, -74.0), 20.0, 600.0)], [place], single)
    feed.answered([Delivery("c", HERE, (40.0, -74.01), 20.0, 600.0)], [place], join)
    await feed.read()  # neither answer committed yet: the database still shows t-db open, t-new not at all
    assert [row.trip_id for row in feed([place])] == ["t-new"]
    (row,) = feed([place])
    assert row.age_s == pytest.approx(0.0, abs=1) and row.ready_in_s == pytest.approx(600.0, abs=1)
    feed.fresh = {t: (at - KEEP_ANSWERS_S - 1, r) for t, (at, r) in feed.fresh.items()}  # long ago
    feed.joined = {t: at - KEEP_ANSWERS_S - 1 for t, at in feed.joined.items()}
    await feed.read()
    assert [row.trip_id for row in feed([place])] == ["t-db"]  # what the database says, and only that
