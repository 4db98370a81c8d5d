"""The benchmark's books checker catches each broken rule: one bad plan per rule, each must fail."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import pytest

from uoom.assignment.geo import haversine_km
from uoom.domain.channels import Channel
from uoom.replay.books import Books, Rules, check
from uoom.replay.day import SimOrder
from uoom.replay.sim import Day

R = (40.73, -73.99)
RULES = Rules(frozenset({"bike"}), fee_share=0.5)


def east(km: float) -> tuple[float, float]:
    return (R[0], R[1] + km / (111.32 * math.cos(math.radians(R[0]))))


def north(km: float) -> tuple[float, float]:
    return (R[0] + km / 111.32, R[1])


def order(
    oid: str, dropoff: tuple[float, float], created: float = 0.0, ready: float = 600.0, where: int = 1
) -> SimOrder:
    return SimOrder(oid, created, R, dropoff, haversine_km(R, dropoff), 20.0, ready, where)


BIKE = Channel("bike", "bike", "own_fleet", 2, 3.0, 0.6, 15, 6, 4, 0.95)
CAR = Channel("car", "car", "partner", 1, 5.0, 1.0, 25, 8, 8, 0.9)


def day_with_a_trip_and_a_move() -> tuple[Day, dict[str, SimOrder]]:
    """A valid day: a two-order trip on the bike, one order moved from the car to the bike."""
    a, b, c = order("a", east(1.0)), order("b", north(1.5), ready=700.0), order("c", east(2.0), created=10.0)
    day = Day([BIKE, CAR], RULES)
    day.open(0, [a], 0.0)
    day.join("t0", b, 5.0)
    day.open(1, [c], 10.0)
    day.move("c", 0, 60.0)
    return day, {o.order_id: o for o in (a, b, c)}


def books(day: Day, orders: dict[str, SimOrder], channels: list[Channel] | None = None) -> Books:
    return check(orders, channels or day.channels, list(day.trips.values()), day.moves, day.fallbacks, RULES)


def test_a_valid_day_has_clean_books_and_its_sums() -> None:
    day, orders = day_with_a_trip_and_a_move()
    result = books(day, orders)
    assert result.faults == []
    assert result.fees == pytest.approx(2.5)  # half the car's base cost
    assert result.delivered == 3 and result.fallbacks == 0
    trip = day.trips["t0"]
    assert sum(trip.shares.values()) == pytest.approx(trip.dollars)


Breaker = Callable[[Day, dict[str, SimOrder]], list[Channel] | None]


def over_capacity(day: Day, orders: dict[str, SimOrder]) -> list[Channel]:
    return [replace(BIKE, capacity=1), CAR]  # the trip and the moved order overlap on the bike


def outside_radius(day: Day, orders: dict[str, SimOrder]) -> None:
    orders["b"].dropoff = north(4.5)
    orders["b"].distance_km = haversine_km(R, orders["b"].dropoff)


def two_restaurants(day: Day, orders: dict[str, SimOrder]) -> None:
    orders["b"].restaurant = 2


def ready_too_far_apart(day: Day, orders: dict[str, SimOrder]) -> None:
    orders["b"].ready = orders["a"].ready + 301


def late_in_a_trip(day: Day, orders: dict[str, SimOrder]) -> None:
    orders["b"].created = -3000.0


def on_a_channel_that_does_not_bundle(day: Day, orders: dict[str, SimOrder]) -> list[Channel]:
    return [replace(BIKE, id="bike-solo"), CAR]


def three_orders(day: Day, orders: dict[str, SimOrder]) -> None:
    day.trips["t0"].orders.append("c")


def joined_after_pickup(day: Day, orders: dict[str, SimOrder]) -> None:
    trip = day.trips["t0"]
    trip.joined_at = trip.pickup_before_join


def wrong_dollars(day: Day, orders: dict[str, SimOrder]) -> None:
    day.trips["t0"].dollars += 0.5


def split_not_summing(day: Day, orders: dict[str, SimOrder]) -> None:
    day.trips["t0"].shares["a"] += 0.5


def wrong_delivery_time(day: Day, orders: dict[str, SimOrder]) -> None:
    day.trips["t0"].deliver_at["b"] -= 60


def move_after_the_cut_off(day: Day, orders: dict[str, SimOrder]) -> None:
    (move,) = day.moves
    day.moves[0] = replace(move, at=10.0 + CAR.pickup_latency_min * 60)


def wrong_fee(day: Day, orders: dict[str, SimOrder]) -> None:
    day.moves[0] = replace(day.moves[0], fee=0.0)


def cancelled_without_a_move(day: Day, orders: dict[str, SimOrder]) -> None:
    day.moves.clear()


def placed_twice(day: Day, orders: dict[str, SimOrder]) -> None:
    day.fallbacks.add("a")


def never_placed(day: Day, orders: dict[str, SimOrder]) -> None:
    orders["z"] = order("z", east(1.0))


@pytest.mark.parametrize(
    ("breaker", "fault"),
    [
        (over_capacity, "slots held"),
        (outside_radius, "outside the radius"),
        (two_restaurants, "two restaurants"),
        (ready_too_far_apart, "ready times too far apart"),
        (late_in_a_trip, "late in a trip"),
        (on_a_channel_that_does_not_bundle, "does not bundle"),
        (three_orders, "3 orders"),
        (joined_after_pickup, "joined after pickup"),
        (wrong_dollars, "dollars do not match"),
        (split_not_summing, "split does not sum"),
        (wrong_delivery_time, "do not follow the route"),
        (move_after_the_cut_off, "after the courier reached the restaurant"),
        (wrong_fee, "fee 0.00 != 2.50"),
        (cancelled_without_a_move, "cancelled without a move"),
        (placed_twice, "a: placed 2 times"),
        (never_placed, "z: placed 0 times"),
    ],
    ids=lambda x: x.__name__ if callable(x) else "",
)
def test_the_books_catch_every_broken_rule(breaker: Breaker, fault: str) -> None:
    day, orders = day_with_a_trip_and_a_move()
    channels = breaker(day, orders)
    found = books(day, orders, channels).faults
    assert any(fault in f for f in found), found


def test_a_trip_holds_one_slot_so_two_orders_fit_a_one_slot_channel() -> None:
    a, b = order("a", east(1.0)), order("b", north(1.5), ready=700.0)
    one_slot = replace(BIKE, capacity=1)
    day = Day([one_slot, CAR], RULES)
    day.open(0, [a, b], 0.0)
    assert books(day, {"a": a, "b": b}).faults == []
