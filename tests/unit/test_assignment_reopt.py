"""Rolling re-optimization: moves only for real gains, never breaking capacity or radius."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uoom.assignment import Channel, CurrentAssignment, Delivery, Weights, reoptimize, solve
from uoom.assignment.costs import eta_seconds, fallback_points, score
from uoom.assignment.geo import haversine_km

CENTER = (40.73, -73.99)
PENALTY = 25.0
THRESHOLD = 1.0
DEADLINE_MS = 10_000.0


def east(km: float) -> tuple[float, float]:
    return (CENTER[0], CENTER[1] + km / (111.32 * math.cos(math.radians(CENTER[0]))))


def channel(cid: str, capacity: int, base_cost: float, load: int = 0, radius_km: float = 10.0) -> Channel:
    return Channel(cid, cid, "partner", capacity, base_cost, 1.0, 20.0, 5.0, radius_km, 0.9, load)


def num(low: float, high: float, *common: float) -> st.SearchStrategy[float]:
    """A float, often one of a few round values: equal costs (ties) must not break anything."""
    return st.sampled_from(common) | st.floats(low, high)


@st.composite
def placements(draw: st.DrawFn) -> tuple[list[CurrentAssignment], list[Channel]]:
    """Orders already placed on random channels (or in fallback); loads count them, plus others."""
    channels = [
        Channel(
            f"c{j}",
            f"c{j}",
            "partner",
            draw(st.integers(1, 6)),
            draw(num(0, 10, 0.0, 3.0)),
            draw(num(0, 2, 0.0, 1.0)),
            draw(num(5, 40, 15.0)),
            draw(num(0, 20, 0.0, 5.0)),
            draw(num(1, 10, 3.0, 10.0)),
            draw(num(0, 1, 0.9)),
        )
        for j in range(draw(st.integers(1, 5)))
    ]
    placed: list[CurrentAssignment] = []
    held: Counter[str] = Counter()
    for i in range(draw(st.integers(1, 15))):
        order = Delivery(f"o{i}", CENTER, east(draw(num(0, 9, 0.0, 2.0))), 30.0, draw(st.none() | num(0, 2000, 0.0)))
        d = haversine_km(order.pickup, order.dropoff)
        room = [c for c in channels if held[c.id] < c.capacity and d <= c.radius_km]
        current = draw(st.none() | st.sampled_from(room)) if room else None
        if current is None:
            placed.append(CurrentAssignment(order, None))
            continue
        held[current.id] += 1
        # An en-route courier is usually ahead of a fresh one, but not always.
        placed.append(CurrentAssignment(order, current.id, draw(st.none() | st.floats(0, 3600))))
    loads = {c.id: min(held[c.id] + draw(st.integers(0, 2)), max(c.capacity, held[c.id])) for c in channels}
    return placed, [replace(c, load=loads[c.id]) for c in channels]


weights = (
    st.tuples(*[st.floats(0, 1)] * 3)
    .filter(lambda w: sum(w) > 0.01)
    .map(lambda w: Weights(cost=w[0], time=w[1], quality=w[2], capacity=0.0))
)


def points(
    p: CurrentAssignment, channel_id: str | None, channels: list[Channel], w: Weights, *, staying: bool
) -> float:
    """Reference score of an order on a channel (capacity weight 0, so the load does not matter)."""
    if channel_id is None:
        return fallback_points(p.delivery.ready_at, w, PENALTY)
    c = next(c for c in channels if c.id == channel_id)
    d = haversine_km(p.delivery.pickup, p.delivery.dropoff)
    fresh = score(d, p.delivery.ready_at, c, w)
    if staying and p.eta_seconds is not None:
        return fresh + w.normalized().time * (p.eta_seconds - eta_seconds(d, p.delivery.ready_at, c)) / 60
    return fresh


@settings(max_examples=150, deadline=None)
@given(placements(), weights, st.sampled_from([0.0, 0.5]) | st.floats(0, 2), st.integers(0, 3))
def test_moves_keep_capacity_reserve_and_radius_and_save_more_than_threshold_and_fee_each(
    case: tuple[list[CurrentAssignment], list[Channel]], w: Weights, fee_share: float, reserve: int
) -> None:
    placed, channels = case
    moves = reoptimize(placed, channels, w, threshold=THRESHOLD, fee_share=fee_share, reserve=reserve,
                       deadline_ms=DEADLINE_MS, fallback_penalty=PENALTY)  # fmt: skip
    by_order = {p.delivery.order_id: p for p in placed}
    assert len({m.order_id for m in moves}) == len(moves)
    before = Counter(p.channel_id for p in placed)
    after = before.copy()
    total_gain = 0.0
    for m in moves:
        p = by_order[m.order_id]
        assert m.from_channel_id == p.channel_id != m.to_channel_id
        target = next(c for c in channels if c.id == m.to_channel_id)  # a channel, never the fallback
        assert haversine_km(p.delivery.pickup, p.delivery.dropoff) <= target.radius_km
        gain = points(p, p.channel_id, channels, w, staying=True) - points(
            p, m.to_channel_id, channels, w, staying=False
        )
        base = next((c.base_cost for c in channels if c.id == p.channel_id), 0.0)  # the fallback: no fee
        assert m.fee == Decimal(f"{fee_share * base:.2f}")
        assert m.gain == pytest.approx(gain - w.normalized().cost * float(fee_share * base), abs=0.01)
        total_gain += m.gain
        after[m.from_channel_id] -= 1
        after[m.to_channel_id] += 1
    for c in channels:
        assert c.load - before[c.id] + after[c.id] <= max(c.capacity, c.load)
        if after[c.id] > before[c.id]:  # a channel that gained orders still has the reserve free
            assert c.capacity - (c.load - before[c.id] + after[c.id]) >= reserve
    if moves:
        assert total_gain > THRESHOLD * len(moves)


@settings(max_examples=100, deadline=None)
@given(placements(), weights)
def test_an_optimal_placement_stays_put(case: tuple[list[CurrentAssignment], list[Channel]], w: Weights) -> None:
    placed, channels = case
    free = [replace(c, load=0) for c in channels]
    result = solve([p.delivery for p in placed], free, w, DEADLINE_MS, PENALTY)
    settled = [CurrentAssignment(p.delivery, a.channel_id) for p, a in zip(placed, result.assignments, strict=True)]
    used = Counter(a.channel_id for a in result.assignments)
    loaded = [replace(c, load=used[c.id]) for c in free]
    assert reoptimize(settled, loaded, w, threshold=0.0, deadline_ms=DEADLINE_MS, fallback_penalty=PENALTY) == []


def test_an_order_moves_to_a_channel_much_cheaper_than_its_own() -> None:
    order = Delivery("o1", CENTER, east(2.0))
    channels = [channel("dear", 5, 20.0, load=1), channel("cheap", 5, 2.0)]
    (move,) = reoptimize([CurrentAssignment(order, "dear")], channels, threshold=THRESHOLD)
    assert (move.order_id, move.from_channel_id, move.to_channel_id) == ("o1", "dear", "cheap")
    assert move.gain == pytest.approx(0.5 * 18.0, abs=0.01)  # cost weight 0.5 of $18 saved


def test_a_gain_below_the_threshold_is_not_worth_a_move() -> None:
    order = Delivery("o1", CENTER, east(2.0))
    channels = [channel("dear", 5, 4.0, load=1), channel("cheap", 5, 2.0)]  # 0.5 * $2 = 1.0 point
    assert reoptimize([CurrentAssignment(order, "dear")], channels, threshold=1.0) == []
    assert len(reoptimize([CurrentAssignment(order, "dear")], channels, threshold=0.9)) == 1


def test_a_fallen_back_order_gets_a_channel_once_one_has_room() -> None:
    order = Delivery("o1", CENTER, east(2.0))
    (move,) = reoptimize([CurrentAssignment(order, None)], [channel("bikes", 5, 3.0)], threshold=THRESHOLD)
    assert (move.from_channel_id, move.to_channel_id) == (None, "bikes")
    assert reoptimize([CurrentAssignment(order, None)], [channel("bikes", 5, 3.0, load=5)], threshold=THRESHOLD) == []


def test_an_order_on_a_full_channel_is_never_dropped_to_the_fallback() -> None:
    order = Delivery("o1", CENTER, east(2.0))
    overloaded = channel("dear", 1, 30.0, load=3)  # dearer than the fallback, and over capacity
    assert reoptimize([CurrentAssignment(order, "dear")], [overloaded], threshold=0.0) == []


def test_a_solver_crash_means_no_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("solver crashed")

    monkeypatch.setattr("uoom.assignment.reopt.exact_choice", crash)
    order = Delivery("o1", CENTER, east(2.0))
    channels = [channel("dear", 5, 20.0, load=1), channel("cheap", 5, 2.0)]
    assert reoptimize([CurrentAssignment(order, "dear")], channels) == []


def test_a_solver_answer_no_better_than_staying_moves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    order = Delivery("o1", CENTER, east(2.0))
    channels = [channel("cheap", 5, 2.0, load=1), channel("dear", 5, 20.0)]
    monkeypatch.setattr("uoom.assignment.reopt.exact_choice", lambda table: [1])
    assert reoptimize([CurrentAssignment(order, "cheap")], channels, threshold=0.0) == []


def test_the_capacity_weight_moves_an_order_off_a_nearly_full_channel() -> None:
    order = Delivery("o1", CENTER, east(2.0))
    channels = [channel("busy", 10, 3.0, load=9), channel("idle", 10, 3.0)]
    only_capacity = Weights(cost=0, time=0, quality=0, capacity=1)
    (move,) = reoptimize([CurrentAssignment(order, "busy")], channels, only_capacity, threshold=THRESHOLD)
    assert (move.from_channel_id, move.to_channel_id) == ("busy", "idle")
    assert move.gain == pytest.approx(100 * 9 / 10 - 100 * 1 / 10)  # its slot counted once, not twice
    assert reoptimize([CurrentAssignment(order, "busy")], channels, Weights(), threshold=THRESHOLD) == []


def test_a_move_is_made_only_when_its_gain_beats_the_fee_and_carries_the_fee() -> None:
    order = Delivery("o1", CENTER, east(2.0))
    channels = [channel("dear", 5, 20.0, load=1), channel("cheap", 5, 2.0)]  # 0.5 x $18 = 9 points gross
    here = [CurrentAssignment(order, "dear")]
    (move,) = reoptimize(here, channels, threshold=0.0, fee_share=0.89)  # fee 0.5 x $17.80 = 8.9 points
    assert (move.to_channel_id, move.fee) == ("cheap", Decimal("17.80"))
    assert move.gain == pytest.approx(9.0 - 8.9, abs=0.001)  # net of the fee
    assert reoptimize(here, channels, threshold=0.0, fee_share=0.9) == []  # a net gain of 0 stays
    assert reoptimize(here, channels, threshold=0.0, fee_share=0.91) == []


def test_a_move_out_of_the_fallback_pays_no_fee() -> None:
    order = Delivery("o1", CENTER, east(2.0))
    (move,) = reoptimize([CurrentAssignment(order, None)], [channel("bikes", 5, 3.0)], fee_share=0.5)
    assert (move.from_channel_id, move.fee) == (None, Decimal("0.00"))


def test_moves_leave_the_reserve_free_for_the_next_orders() -> None:
    order = Delivery("o1", CENTER, east(2.0))
    here = [CurrentAssignment(order, "dear")]
    channels = [channel("dear", 5, 20.0, load=1), channel("cheap", 3, 2.0, load=1)]  # cheap: 2 slots free
    assert len(reoptimize(here, channels, threshold=0.0, reserve=1)) == 1  # one slot left for the next order
    assert reoptimize(here, channels, threshold=0.0, reserve=2) == []  # it would take the next order's slot


def test_under_the_reserve_two_orders_may_still_swap_channels() -> None:
    near, far = Delivery("near", CENTER, east(0.5)), Delivery("far", CENTER, east(6.0))
    # "short" reaches 1 km only, "long" 8 km: each order sits where the other belongs, both channels full
    short, long_ = channel("short", 1, 2.0, load=1, radius_km=7.0), channel("long", 1, 2.0, load=1, radius_km=8.0)
    short = replace(short, speed_kmh=5.0)  # slow: the far order loses a lot of time on it
    here = [CurrentAssignment(near, "long"), CurrentAssignment(far, "short")]
    moves = reoptimize(here, [short, long_], threshold=0.0, reserve=1)
    assert {(m.order_id, m.to_channel_id) for m in moves} == {("far", "long"), ("near", "short")}


def test_the_daemon_reserves_the_orders_expected_before_its_next_round() -> None:
    from daemons.optimizer.reoptimizer import reserve_slots

    assert reserve_slots(0, 60.0, 2.0) == 0  # nobody is coming: moves may take every free slot
    assert reserve_slots(30, 60.0, 2.0) == 1  # one order every 2 s: one slot per channel
    assert reserve_slots(31, 60.0, 2.0) == 2  # rounded up: a slot short is the next order's loss
    assert reserve_slots(5, 3600.0, 3600.0) == 5
