"""dispatch(): the min-cost flow where the problem is a pure assignment, trips where they pay, every
trip rule kept, the proven bound never above the exact optimum; and fees in re-optimization."""

from __future__ import annotations

import importlib
import math
import random
from collections import Counter

import pytest

from bench.dispatch import timing
from uoom.assignment import Channel, CurrentAssignment, Delivery, Weights, reoptimize, solve
from uoom.assignment.costs import build_cost_table, objective
from uoom.assignment.cpsat import cpsat_choice
from uoom.assignment.dispatch import OpenTrip, dispatch, trip_options
from uoom.assignment.trips import Bundling, TripOrder, route, trip_faults
from uoom.replay import day as day_module
from uoom.replay.books import Rules

R = (40.73, -73.99)
COST_ONLY = Weights(cost=1.0, time=0.0, quality=0.0, capacity=0.0)


def at(north_km: float, east_km: float, origin: tuple[float, float] = R) -> tuple[float, float]:
    lat = origin[0] + north_km / 111.32
    return (lat, origin[1] + east_km / (111.32 * math.cos(math.radians(origin[0]))))


def channel(cid: str, capacity: int, base: float, per_km: float = 0.5, radius: float = 6.0, load: int = 0) -> Channel:
    return Channel(cid, cid, "partner", capacity, base, per_km, 18.0, 5.0, radius, 0.9, load)


def random_channels(rng: random.Random, m: int) -> list[Channel]:
    return [
        channel(f"c{j}", rng.randint(1, 6), rng.uniform(2, 8), rng.uniform(0.4, 1.6), rng.uniform(2, 8))
        for j in range(m)
    ]


def random_orders(rng: random.Random, n: int, restaurants: int) -> list[TripOrder]:
    places = [at(rng.uniform(-3, 3), rng.uniform(-3, 3)) for _ in range(restaurants)]
    out = []
    for i in range(n):
        r = rng.randrange(restaurants)
        drop = at(rng.uniform(-3, 3), rng.uniform(-3, 3), places[r])
        out.append(TripOrder(f"o{i}", f"r{r}", places[r], drop, rng.uniform(0, 900), rng.uniform(0, 300)))
    return out


@pytest.mark.parametrize("seed", range(30))
def test_min_cost_flow_equals_the_exact_cpsat_optimum_on_pure_assignments(seed: int) -> None:
    rng = random.Random(seed)
    orders = random_orders(rng, rng.randint(5, 40), 40)
    chans = random_channels(rng, rng.randint(2, 6))
    deliveries = [Delivery(o.order_id, o.pickup, o.dropoff, 0.0, o.ready_at) for o in orders]
    flow = solve(deliveries, chans, Weights(), deadline_ms=10_000)
    table = build_cost_table(deliveries, chans, Weights(), 25.0)
    name, choice = cpsat_choice(table, 30.0)
    assert name == "OPTIMAL" and choice is not None
    assert flow.status == "OPTIMAL" and flow.objective == objective(table, choice)
    plan = dispatch(orders, chans, Weights(), deadline_ms=10_000)  # no bundling: a pure assignment
    assert plan.formulation == "flow" and plan.objective == flow.objective and plan.gap == 0.0


def check_plan_keeps_every_rule(
    orders: list[TripOrder], chans: list[Channel], trips: list[OpenTrip], bundling: Bundling, plan: object
) -> None:
    placements = plan.placements  # type: ignore[attr-defined]
    assert [p.order_id for p in placements] == [o.order_id for o in orders]
    by_id = {o.order_id: o for o in orders}
    index = {c.id: c for c in chans}
    slots: Counter[str] = Counter()
    joined: Counter[str] = Counter()
    for p in placements:
        if p.channel_id is None:
            continue
        c, o = index[p.channel_id], by_id[p.order_id]
        assert o.distance_km <= c.radius_km
        if p.trip_id is not None:
            (trip,) = [t for t in trips if t.trip_id == p.trip_id]
            joined[p.trip_id] += 1
            pair = (trip.order, o)
            plan_route = route(c, pair, trip.courier_at_s)
            assert trip.channel_id == c.id and route(c, pair[:1], trip.courier_at_s).pickup_s > 0
            assert trip_faults(c, pair, plan_route, bundling) == []
        elif p.partner_id is not None:
            other = next(x for x in placements if x.order_id == p.partner_id)
            assert other.partner_id == p.order_id and other.channel_id == p.channel_id
            pair = (o, by_id[p.partner_id])
            assert trip_faults(c, pair, route(c, pair, c.pickup_latency_min * 60), bundling) == []
            if p.order_id < p.partner_id:
                slots[c.id] += 1
        else:
            slots[c.id] += 1
    assert all(slots[c.id] <= c.free for c in chans)
    assert all(n == 1 for n in joined.values())


@pytest.mark.parametrize("seed", range(25))
def test_trips_keep_every_rule_and_the_priced_answer_stays_above_its_bound_and_the_optimum(seed: int) -> None:
    rng = random.Random(seed)
    orders = random_orders(rng, rng.randint(6, 24), rng.randint(2, 5))
    chans = random_channels(rng, rng.randint(2, 4))
    bundling = Bundling(frozenset(c.id for c in chans[:2]), ready_within_s=300.0, on_time_s=2700.0)
    earlier = random_orders(rng, 6, 3)
    trips = [OpenTrip(f"t{k}", chans[k % 2].id, o, rng.uniform(-60, 400)) for k, o in enumerate(earlier)]
    trips = [t for t in trips if t.order.distance_km <= {c.id: c for c in chans}[t.channel_id].radius_km]
    fast = dispatch(orders, chans, bundling=bundling, open_trips=trips, deadline_ms=10_000, gap_target=1.0)
    best = dispatch(orders, chans, bundling=bundling, open_trips=trips, deadline_ms=30_000, gap_target=0.0)
    for plan in (fast, best):
        check_plan_keeps_every_rule(orders, chans, trips, bundling, plan)
    assert best.status == "OPTIMAL"
    assert fast.bound <= best.objective <= fast.objective
    assert best.objective <= dispatch(orders, chans, deadline_ms=10_000).objective  # trips never cost more


def recomputed_objective(
    orders: list[TripOrder], chans: list[Channel], trips: list[OpenTrip], bundling: Bundling, plan: object
) -> int:
    """The plan's objective from its placements alone: each single's, pair's and join's own cost."""
    table = build_cost_table(
        [Delivery(o.order_id, o.pickup, o.dropoff, 0.0, o.ready_at) for o in orders], chans, Weights(), 25.0
    )
    options = trip_options(orders, chans, Weights(), bundling, trips, table.fallback)
    position = {o.order_id: i for i, o in enumerate(orders)}
    column = {c.id: j for j, c in enumerate(chans)}
    opened = {t.trip_id: k for k, t in enumerate(trips)}
    total = 0
    for i, p in enumerate(plan.placements):  # type: ignore[attr-defined]
        if p.channel_id is None:
            total += table.fallback[i] or 0
        elif p.trip_id is not None:
            (cost,) = [o.cost for o in options if o.orders == (i,) and o.trip == opened[p.trip_id]]
            total += cost
        elif p.partner_id is not None:
            if position[p.partner_id] > i:  # each pair once
                pair = (i, position[p.partner_id])
                (cost,) = [o.cost for o in options if o.orders == pair and o.channel == column[p.channel_id]]
                total += cost
        else:
            total += dict(table.options[i])[column[p.channel_id]]
    return total


def busy_instance(rng: random.Random, n: int, restaurants: int,
                  ) -> tuple[list[TripOrder], list[Channel], Bundling, list[OpenTrip]]:  # fmt: skip
    """`n` orders of a few restaurants, three channels of which two bundle, and four open trips."""
    orders = random_orders(rng, n, restaurants)
    chans = random_channels(rng, 3)
    bundling = Bundling(frozenset(c.id for c in chans[:2]), ready_within_s=900.0, on_time_s=2700.0)
    earlier = random_orders(rng, 4, 2)
    trips = [OpenTrip(f"t{k}", chans[k % 2].id, o, rng.uniform(0, 400)) for k, o in enumerate(earlier)]
    trips = [t for t in trips if t.order.distance_km <= {c.id: c for c in chans}[t.channel_id].radius_km]
    return orders, chans, bundling, trips


@pytest.mark.parametrize("seed", range(12))
def test_the_reported_objective_is_what_the_placements_cost_and_the_bound_holds_for_large_groups(seed: int) -> None:
    """One busy restaurant: its group has more configurations than are enumerated (relaxed order
    by order); the objective is still the placements' own, and the bound still below the optimum."""
    rng = random.Random(100 + seed)
    orders, chans, bundling, trips = busy_instance(rng, rng.randint(14, 22), 2)
    fast = dispatch(orders, chans, bundling=bundling, open_trips=trips, deadline_ms=10_000, gap_target=1.0)
    best = dispatch(orders, chans, bundling=bundling, open_trips=trips, deadline_ms=30_000, gap_target=0.0)
    for plan in (fast, best):
        check_plan_keeps_every_rule(orders, chans, trips, bundling, plan)
        assert recomputed_objective(orders, chans, trips, bundling, plan) == plan.objective
    assert best.status == "OPTIMAL"
    assert fast.bound <= best.objective <= fast.objective


@pytest.mark.parametrize("seed", range(20))
def test_the_local_search_keeps_a_feasible_plan_with_its_exact_objective(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The priced answer after the local search (no CP-SAT after it): every rule kept, the objective
    the placements' own, never worse than without the search, the bound still below the optimum."""
    monkeypatch.setattr(importlib.import_module("uoom.assignment.dispatch"), "MAX_SEARCH_PAIRS", 0)
    rng = random.Random(500 + seed)
    orders, chans, bundling, trips = busy_instance(rng, rng.randint(12, 30), rng.randint(2, 4))
    rounds = dispatch(orders, chans, bundling=bundling, open_trips=trips, deadline_ms=10_000, gap_target=1.0)
    searched = dispatch(orders, chans, bundling=bundling, open_trips=trips, deadline_ms=10_000, gap_target=1e-9)
    best = dispatch(orders, chans, bundling=bundling, open_trips=trips, deadline_ms=30_000, gap_target=0.0)
    assert searched.formulation == "priced" and best.status == "OPTIMAL"
    check_plan_keeps_every_rule(orders, chans, trips, bundling, searched)
    assert recomputed_objective(orders, chans, trips, bundling, searched) == searched.objective
    assert searched.bound <= best.objective <= searched.objective <= rounds.objective


@pytest.mark.parametrize("sample", [9, 173])
def test_a_scarce_bundling_channel_gets_its_best_pairs_at_200_x_12(sample: int) -> None:
    """Two instances of the bench's 200 x 12 trips timing (bench/dispatch/timing.py cases, the
    synthetic day) where the priced answer used to be 0.68 % and 0.66 % above the optimum: a
    bundling channel with a few free slots and more proposed pairs than slots (the rounds added them
    all at once, or kept one pair too many). The local search (pricing._improve) finds the optimum."""
    day = day_module.load()
    rules = Rules.of_day(day)
    twelve = day_module.twelve_channels(day_module.day_channels(day))
    bundling = Bundling(rules.bundling | {f"{c}-2" for c in rules.bundling}, rules.ready_within_s, rules.on_time_s)
    cases = timing.cases(day_module.generate(day), twelve, bundling, 200, sample + 1, day["seed"] + 101)
    orders, chans, trips = cases[sample]
    weights, penalty = Weights(**day["default_weights"]), float(day["fallback_penalty"])
    # 1 s: the answer, not the clock, is under test (the bench times the 50 ms deadline)
    plan = dispatch(orders, chans, weights, bundling=bundling, open_trips=trips, deadline_ms=1000.0,
                    fallback_penalty=penalty)  # fmt: skip
    best = dispatch(orders, chans, weights, bundling=bundling, open_trips=trips, deadline_ms=20_000.0,
                    fallback_penalty=penalty, gap_target=0.0)  # fmt: skip
    assert plan.formulation == "priced" and best.status == "OPTIMAL"
    check_plan_keeps_every_rule(orders, chans, trips, bundling, plan)
    assert plan.bound <= best.objective <= plan.objective <= best.objective * 1.005


def joins_kept_and_optimum_kept(orders: list[TripOrder], firsts: list[TripOrder], rng: random.Random,
                                monkeypatch: pytest.MonkeyPatch) -> Counter[int]:  # fmt: skip
    """Open trips of `firsts` on three random channels (two bundle): asserts that the exact
    optimum with each order's joins cut is the optimum with every join; the joins kept per order."""
    dispatch_module = importlib.import_module("uoom.assignment.dispatch")  # the package's name is the function
    chans = random_channels(rng, 3)
    bundling = Bundling(frozenset(c.id for c in chans[:2]), ready_within_s=900.0, on_time_s=2700.0)
    trips = [OpenTrip(f"t{k}", chans[k % 2].id, o, rng.uniform(0, 400)) for k, o in enumerate(firsts)]
    table = build_cost_table([Delivery(o.order_id, o.pickup, o.dropoff, 0.0, o.ready_at) for o in orders],
                             chans, Weights(), 25.0)  # fmt: skip
    kept = Counter(o.orders[0] for o in trip_options(orders, chans, Weights(), bundling, trips, table.fallback)
                   if o.trip >= 0)  # fmt: skip
    pruned = dispatch(orders, chans, bundling=bundling, open_trips=trips, deadline_ms=30_000, gap_target=0.0)
    monkeypatch.setattr(dispatch_module, "_best_joins", lambda joins, keep: joins)
    every = dispatch(orders, chans, bundling=bundling, open_trips=trips, deadline_ms=30_000, gap_target=0.0)
    assert pruned.status == every.status == "OPTIMAL"
    assert pruned.objective == every.objective
    check_plan_keeps_every_rule(orders, chans, trips, bundling, pruned)
    return kept


def firsts_at(rng: random.Random, restaurant: str, place: tuple[float, float], n: int) -> list[TripOrder]:
    return [TripOrder(f"f{restaurant}{k}", restaurant, place, at(rng.uniform(-2, 2), rng.uniform(-2, 2), place),
                      rng.uniform(0, 900)) for k in range(n)]  # fmt: skip


@pytest.mark.parametrize("seed", range(10))
def test_keeping_each_orders_cheapest_joins_loses_nothing(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restaurant with many open trips: each order keeps only as many joins as the batch has
    orders, and the exact optimum is the same as with every join."""
    rng = random.Random(300 + seed)
    orders = random_orders(rng, rng.randint(2, 5), 1)
    kept = joins_kept_and_optimum_kept(orders, firsts_at(rng, orders[0].restaurant, orders[0].pickup, 15), rng,
                                       monkeypatch)  # fmt: skip
    assert max(kept.values(), default=0) <= len(orders)


@pytest.mark.parametrize("seed", range(10))
def test_each_order_keeps_as_many_joins_as_its_restaurant_has_orders_and_loses_nothing(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the orders of one restaurant may join its open trips: an order keeps as many joins as
    the batch has orders of its restaurant, not of every restaurant, and the optimum stays."""
    rng = random.Random(400 + seed)
    orders = random_orders(rng, rng.randint(4, 7), 3)
    places = {o.restaurant: o.pickup for o in orders}
    firsts = [first for r, place in places.items() for first in firsts_at(rng, r, place, 12)]
    kept = joins_kept_and_optimum_kept(orders, firsts, rng, monkeypatch)
    of_restaurant = Counter(o.restaurant for o in orders)
    assert all(n <= of_restaurant[orders[i].restaurant] for i, n in kept.items()), kept


@pytest.mark.parametrize("seed", range(20))
def test_one_order_takes_its_cheapest_option_without_a_solver(seed: int) -> None:
    rng = random.Random(200 + seed)
    chans = random_channels(rng, 4)
    bundling = Bundling(frozenset(c.id for c in chans[:2]))
    (order,) = random_orders(rng, 1, 1)
    firsts = [
        TripOrder(
            f"f{k}",
            order.restaurant,
            order.pickup,
            at(rng.uniform(-2, 2), rng.uniform(-2, 2), order.pickup),
            rng.uniform(0, 900),
        )
        for k in range(3)
    ]
    trips = [OpenTrip(f"t{k}", chans[k % 2].id, o, rng.uniform(0, 400)) for k, o in enumerate(firsts)]
    plan = dispatch([order], chans, bundling=bundling, open_trips=trips)
    table = build_cost_table(
        [Delivery(order.order_id, order.pickup, order.dropoff, 0.0, order.ready_at)], chans, Weights(), 25.0
    )
    costs = [c for _, c in table.options[0]] + [
        o.cost for o in trip_options([order], chans, Weights(), bundling, trips, table.fallback)
    ]
    assert plan.status == "OPTIMAL" and plan.gap == 0.0
    assert plan.objective == min([table.fallback[0] or 0, *costs])
    assert recomputed_objective([order], chans, trips, bundling, plan) == plan.objective


def test_two_orders_of_one_restaurant_share_a_courier_when_it_is_cheaper() -> None:
    bike = channel("bike", 1, 4.0)
    a = TripOrder("a", "r", R, at(1.0, 0.0), 300.0)
    b = TripOrder("b", "r", R, at(1.5, 0.2), 400.0)
    plan = dispatch([a, b], [bike], COST_ONLY, bundling=Bundling(frozenset({"bike"})))
    assert [(p.channel_id, p.partner_id) for p in plan.placements] == [("bike", "b"), ("bike", "a")]
    trip = route(bike, [a, b], bike.pickup_latency_min * 60)
    assert trip.deliver_s[0] < trip.deliver_s[1]  # the nearer drop-off first
    assert sum(p.dollars for p in plan.placements) == pytest.approx(trip.dollars)
    assert trip.dollars == pytest.approx(4.0 + 0.5 * trip.length_km)
    pa, pb = plan.placements  # each also says the other's share and delivery time in the same route
    assert (pa.co_rider_dollars, pa.co_rider_deliver_s) == (pb.dollars, pb.deliver_s)
    assert (pb.co_rider_dollars, pb.co_rider_deliver_s) == (pa.dollars, pa.deliver_s)


def test_a_join_re_prices_and_re_times_the_open_trips_order() -> None:
    """The joiner's placement says the first rider's new share and delivery time: the two shares
    sum to the trip's dollars, and the first rider, alone at its single cost, now pays less."""
    bike = channel("bike", 0, 4.0)
    first = TripOrder("a", "r", R, at(1.0, 0.0), 200.0)
    b = TripOrder("b", "r", R, at(1.5, 0.2), 250.0)
    plan = dispatch([b], [bike], COST_ONLY, bundling=Bundling(frozenset({"bike"})),
                    open_trips=[OpenTrip("t1", "bike", first, 120.0)])  # fmt: skip
    (p,) = plan.placements
    trip = route(bike, [first, b], 120.0)
    assert p.trip_id == "t1" and p.co_rider_dollars is not None and p.co_rider_deliver_s is not None
    assert p.dollars + p.co_rider_dollars == pytest.approx(trip.dollars)
    assert p.co_rider_dollars < 4.0 + 0.5 * first.distance_km  # its share, not its single cost
    assert (p.co_rider_deliver_s, p.deliver_s) == trip.deliver_s
    assert trip.pickup_s == 250.0  # the joiner's food is ready later than the courier arrives


@pytest.mark.parametrize(
    ("b", "why"),
    [
        (TripOrder("b", "other", R, at(1.5, 0.2), 400.0), "two restaurants"),
        (TripOrder("b", "r", R, at(1.5, 0.2), 300.0 + 301), "ready too far apart"),
        (TripOrder("b", "r", R, at(7.0, 0.0), 400.0), "outside the radius"),
        (TripOrder("b", "r", R, at(1.5, 0.2), 400.0, age_s=2500.0), "late"),
    ],
)
def test_no_trip_breaks_a_rule(b: TripOrder, why: str) -> None:
    bike = channel("bike", 2, 4.0)
    a = TripOrder("a", "r", R, at(1.0, 0.0), 300.0)
    plan = dispatch([a, b], [bike], COST_ONLY, bundling=Bundling(frozenset({"bike"})))
    assert all(p.partner_id is None for p in plan.placements), why


def test_a_channel_that_does_not_bundle_carries_one_order() -> None:
    car = channel("car", 2, 4.0)
    a = TripOrder("a", "r", R, at(1.0, 0.0), 300.0)
    b = TripOrder("b", "r", R, at(1.5, 0.2), 400.0)
    plan = dispatch([a, b], [car], COST_ONLY, bundling=Bundling(frozenset({"bike"})))
    assert [p.partner_id for p in plan.placements] == [None, None] and plan.formulation == "flow"


def test_an_order_joins_an_open_trip_only_before_its_pickup() -> None:
    bike = channel("bike", 0, 4.0)  # full: joining is the only way onto it
    first = TripOrder("a", "r", R, at(1.0, 0.0), 200.0)
    b = TripOrder("b", "r", R, at(1.5, 0.2), 250.0)
    bundling = Bundling(frozenset({"bike"}))
    plan = dispatch([b], [bike], COST_ONLY, bundling=bundling, open_trips=[OpenTrip("t1", "bike", first, 120.0)])
    assert (plan.placements[0].trip_id, plan.placements[0].partner_id) == ("t1", "a")
    gone = TripOrder("a", "r", R, at(1.0, 0.0), -60.0)  # ready, and its courier is there: picked up
    plan = dispatch([b], [bike], COST_ONLY, bundling=bundling, open_trips=[OpenTrip("t1", "bike", gone, -30.0)])
    assert plan.placements[0].channel_id is None
    assert (plan.placements[0].co_rider_dollars, plan.placements[0].co_rider_deliver_s) == (None, None)


def east(km: float) -> tuple[float, float]:
    return at(0.0, km)


@pytest.mark.parametrize(("fee_share", "moves"), [(0.0, True), (0.3, True), (0.4, False), (0.5, False)])
def test_a_move_is_made_only_when_its_gain_net_of_the_fee_is_positive(fee_share: float, moves: bool) -> None:
    """Staying costs $5 + 0.5/km; moving $3 + 0.5/km: a $2 gain against a fee of fee_share x $5
    (0.4: a net gain of exactly 0, refused)."""
    order = Delivery("o1", R, east(2.0))
    dear, cheap = channel("dear", 5, 5.0, load=1), channel("cheap", 5, 3.0)
    current = CurrentAssignment(order, "dear")
    found = reoptimize([current], [dear, cheap], COST_ONLY, threshold=0.0, fee_share=fee_share)
    assert bool(found) is moves
    if moves:
        assert found[0].to_channel_id == "cheap"
        assert found[0].gain == pytest.approx(2.0 - fee_share * 5.0, abs=0.002)
