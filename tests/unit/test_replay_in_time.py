"""The in-time policy of the replay: an order whose food is far from ready is held, unassigned,
until it is within the lead of ready. A slot is held from assignment to delivery + 10 minutes, so an
order assigned at creation keeps its slot through the kitchen time, and a one-slot channel turns
away an order that in-time dispatch fits in before."""

from __future__ import annotations

import math
from typing import Any

import pytest

from uoom.assignment import Weights
from uoom.assignment.geo import haversine_km
from uoom.domain.channels import Channel
from uoom.replay import policies
from uoom.replay.books import Rules
from uoom.replay.day import SimOrder
from uoom.replay.sim import Day

R = (40.73, -73.99)
WEIGHTS = Weights(cost=0.5, time=0.3, quality=0.2, capacity=0.0)
ONE_SLOT = Channel("bike", "bike", "own_fleet", 1, 3.0, 0.6, 15, 6, 4, 0.95)
BIG = Channel("car", "car", "partner", 10, 5.0, 1.0, 25, 8, 8, 0.9)


def east(km: float) -> tuple[float, float]:
    return (R[0], R[1] + km / (111.32 * math.cos(math.radians(R[0]))))


def order(oid: str, created: float, ready: float, where: int) -> SimOrder:
    drop = east(1.0)
    return SimOrder(oid, 36_000 + created, R, drop, haversine_km(R, drop), 20.0, 36_000 + ready, where)


# a slow kitchen first (50 minutes), then a quick one (about 11 minutes) a minute later
ORDERS = [order("slow", 0.0, 3000.0, 1), order("quick", 60.0, 700.0, 2)]


def replayed(policy: str) -> dict[str, object]:
    return policies.replay(policy, ORDERS, [ONE_SLOT], Rules(frozenset()), WEIGHTS, 25.0, ["bike"])


def test_at_once_the_slow_kitchens_order_holds_the_only_slot_and_the_quick_one_falls_back() -> None:
    result = replayed("at-once")
    assert (result["delivered"], result["fallbacks"]) == (1, 1)


def test_in_time_both_are_delivered_the_quick_one_first() -> None:
    result = replayed("in-time")
    assert (result["delivered"], result["fallbacks"], result["books_fault_count"]) == (2, 0, 0)


def test_an_order_ready_within_the_lead_goes_out_at_creation_the_others_within_the_lead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    days: list[Day] = []

    class Seen(Day):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            days.append(self)

    monkeypatch.setattr(policies, "Day", Seen)
    soon = order("soon", 0.0, policies.IN_TIME_LEAD_S - 60.0, 1)
    later = order("later", 0.0, 2400.0, 2)
    policies.replay("in-time", [soon, later], [ONE_SLOT, BIG], Rules(frozenset()), WEIGHTS, 25.0, ["bike"])
    assigned = {oid: t.assigned_at - 36_000 for t in days[0].trips.values() for oid in t.orders}
    assert assigned["soon"] == 0.0
    due = 2400.0 - policies.IN_TIME_LEAD_S
    assert due <= assigned["later"] < due + policies.IN_TIME_EVERY_S


@pytest.mark.parametrize(("policy", "trips"), [("in-time", 1), ("in-time-alone", 0)])
def test_the_rounds_pair_two_held_orders_of_one_restaurant_unless_placing_them_alone(policy: str, trips: int) -> None:
    """Both far from ready at creation and due in one round: the daemons' round (dispatch() with
    pairs) puts them on one courier of a bundling channel; placed alone, each takes its own."""
    pair = [order("a", 0.0, 1500.0, 1), order("b", 20.0, 1510.0, 1)]
    result = policies.replay(policy, pair, [BIG], Rules(frozenset({"car"})), WEIGHTS, 25.0, ["car"])
    assert (result["delivered"], result["trips_formed"], result["books_fault_count"]) == (2, trips, 0)
