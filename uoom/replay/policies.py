"""Dispatch policies replayed on the day, and the summary of each (from the checked books)."""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable
from typing import Any

from uoom.assignment import CurrentAssignment, Delivery, Weights, greedy, reoptimize, static_priority
from uoom.assignment.dispatch import ROUND_DEADLINE_MS, ROUND_PART_ORDERS, dispatch
from uoom.assignment.trips import route, trip_faults
from uoom.domain.channels import Channel
from uoom.domain.ranking import ranked
from uoom.replay.books import Rules, check
from uoom.replay.day import SimOrder
from uoom.replay.sim import Day

COST_ONLY = Weights(cost=1.0, time=0.0, quality=0.0, capacity=0.0)
BATCH_EVERY_S = 60.0
REOPT_EVERY_S = 120.0
# The daemon's rules (daemons/optimizer/reoptimizer.py): a move gains its fee + 1 point (the setting
# reopt_threshold's default), and leaves every channel a reserve of free slots for the orders expected
# before the next round (the arrival rate over max(60 s, the interval) x the interval, rounded up).
REOPT_THRESHOLD = 1.0
RESERVE_WINDOW_S = 60.0
EXACT_MS = 10_000.0  # the batch policy is the exact reference: no practical deadline
# in-time: an order whose food is ready later than the lead waits, unassigned, until it is within
# the lead of ready, and goes out with the others due at a round (every IN_TIME_EVERY_S). A slot is
# held from assignment: an order assigned at creation holds one through its whole kitchen time.
# The daemons' rounds put the due orders through dispatch() with pairs and joins when a channel
# bundles (daemons/optimizer/reoptimizer.py release), and place them alone by one min-cost flow when
# none does (in-time-alone here). What a round cannot place stays held for the next.
IN_TIME_LEAD_S = 480.0
IN_TIME_EVERY_S = 30.0
PRODUCT_DEADLINE_MS = 80.0  # what the API gives the optimizer (100 ms timeout, less the margin)


def replay(
    policy: str,
    orders: list[SimOrder],
    channels: list[Channel],
    rules: Rules,
    weights: Weights,
    penalty: float,
    priority: list[str],
    scored_with: Weights | None = None,
    on_order: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """policy: static | greedy | greedy+joins | at-once | batch | rolling | in-time | in-time-alone.
    at-once, rolling and in-time are the product's: `dispatch()` per order, and an order it leaves
    goes to the ranking's best channel, as the API does; in-time holds an order whose food is ready
    later than IN_TIME_LEAD_S and places it at the first round within the lead of ready through
    `dispatch()`, with pairs and joins, as the optimizer's rounds do; in-time-alone places the due
    orders alone by one min-cost flow (`release`: the rounds when no channel bundles). `on_order(n)`
    after each of the day's orders (progress)."""
    day = Day(channels, rules)
    index = {c.id: j for j, c in enumerate(channels)}
    solve_ms: list[float] = []
    pending: list[SimOrder] = []
    handed: list[str] = []  # orders the optimizer left and the API's ranking placed
    created = [o.created for o in orders]  # sorted: the day's orders come in creation order
    held = policy.startswith("in-time")
    every = BATCH_EVERY_S if policy == "batch" else REOPT_EVERY_S if policy == "rolling" else None
    every = IN_TIME_EVERY_S if held else every
    next_tick = (orders[0].created // every + 1) * every if every else None

    def at_creation(o: SimOrder) -> None:
        live = day.live(o.created)
        d = Delivery(o.order_id, o.pickup, o.dropoff, o.value, o.ready - o.created)
        start = time.perf_counter()
        if policy == "static":
            pick = static_priority([d], live, priority, weights, penalty).assignments[0].channel_id
        elif policy in ("greedy", "greedy+joins"):
            pick = greedy([d], live, COST_ONLY, fallback_penalty=penalty).assignments[0].channel_id
            if policy == "greedy+joins":
                joined = cheapest_join(day, o, live[index[pick]] if pick else None, live)
                if joined:
                    solve_ms.append((time.perf_counter() - start) * 1000)
                    day.join(joined, o, o.created)
                    return
        else:
            batch(day, [o], o.created, weights, penalty, solve_ms, PRODUCT_DEADLINE_MS)
            if o.order_id in day.fallbacks:  # left by the optimizer: the API takes the ranking's best
                pick = ranking_pick(o, day.live(o.created), weights)
                if pick is not None:
                    day.fallbacks.discard(o.order_id)
                    day.open(index[pick], [o], o.created)
                    handed.append(o.order_id)
            return
        solve_ms.append((time.perf_counter() - start) * 1000)
        if pick is None:
            day.fall_back(o)
        else:
            day.open(index[pick], [o], o.created)

    def tick(now: float) -> None:
        if policy == "batch":
            if pending:
                batch(day, pending, now, weights, penalty, solve_ms, EXACT_MS)
                pending.clear()
        elif held:
            due = [o for o in pending if o.ready - now <= IN_TIME_LEAD_S]
            if due and policy == "in-time":  # in parts, as the daemons' rounds solve them
                left = set().union(*(batch(day, due[k : k + ROUND_PART_ORDERS], now, weights, penalty, solve_ms,
                                           ROUND_DEADLINE_MS, hold_unplaced=True)
                                     for k in range(0, len(due), ROUND_PART_ORDERS)))  # fmt: skip
            elif due:
                left = release(day, due, now, weights, penalty, solve_ms)
            if due:  # what a round could not place stays held for the next
                pending[:] = [o for o in pending if o.ready - now > IN_TIME_LEAD_S or o.order_id in left]
        else:
            window = max(RESERVE_WINDOW_S, REOPT_EVERY_S)
            arrivals = bisect.bisect_right(created, now) - bisect.bisect_right(created, now - window)
            roll(day, now, weights, penalty, index, math.ceil(arrivals * REOPT_EVERY_S / window))

    for n, o in enumerate(orders, start=1):
        while next_tick is not None and every and next_tick <= o.created:
            tick(next_tick)
            next_tick += every
        if policy == "batch" or (held and o.ready - o.created > IN_TIME_LEAD_S):
            pending.append(o)
        else:
            at_creation(o)
        if on_order is not None:
            on_order(n)
    if next_tick is not None and every:
        for _ in range(math.ceil(3600 / every)):  # the last orders still get their batch / re-solves / release
            tick(next_tick)
            next_tick += every
    for o in pending:  # never placed: the fallback
        day.fall_back(o)
    return {
        **summarize(day, orders, rules, penalty, solve_ms, scored_with or weights),
        "ranking_fallbacks": len(handed),
    }


def ranking_pick(o: SimOrder, live: list[Channel], weights: Weights) -> str | None:
    """What the API does with an order the optimizer leaves unassigned (daemons/api/assign.py): the
    best channel of the composite ranking that reaches the drop-off and has a free slot."""
    return next((c.id for c in ranked(live, weights) if o.distance_km <= c.radius_km and c.load < c.capacity), None)


def cheapest_join(day: Day, o: SimOrder, single: Channel | None, live: list[Channel]) -> str | None:
    """The open trip whose joining adds fewer dollars than the cheapest single, if any."""
    best, best_id = (single.base_cost + single.cost_per_km * o.distance_km) if single else float("inf"), None
    for trip in day.open_trips({o.restaurant}, o.created):
        c = next(ch for ch in live if ch.id == trip.channel_id)
        pair = (trip.order, day.as_trip_order(o, o.created))
        plan = route(c, pair, trip.courier_at_s)
        if trip_faults(c, pair, plan, day.bundling):
            continue
        extra = plan.dollars - route(c, pair[:1], trip.courier_at_s).dollars
        if extra < best:
            best, best_id = extra, trip.trip_id
    return best_id


def batch(
    day: Day,
    group: list[SimOrder],
    now: float,
    weights: Weights,
    penalty: float,
    solve_ms: list[float],
    deadline_ms: float,
    hold_unplaced: bool = False,
) -> set[str]:
    """`dispatch()` on `group` and the open trips; an order it leaves falls back, or with
    `hold_unplaced` is returned (its id) to be placed later."""
    live = day.live(now)
    index = {c.id: j for j, c in enumerate(live)}
    trips = day.open_trips({o.restaurant for o in group}, now)
    start = time.perf_counter()
    plan = dispatch(
        [day.as_trip_order(o, now) for o in group],
        live,
        weights,
        bundling=day.bundling,
        open_trips=trips,
        deadline_ms=deadline_ms,
        fallback_penalty=penalty,
    )
    solve_ms.append((time.perf_counter() - start) * 1000)
    by_id = {o.order_id: o for o in group}
    unplaced = set()
    for p in plan.placements:
        o = by_id[p.order_id]
        if p.channel_id is None and hold_unplaced:
            unplaced.add(o.order_id)
        elif p.channel_id is None:
            day.fall_back(o)
        elif p.trip_id is not None:
            day.join(p.trip_id, o, now)
        elif p.partner_id is not None:
            if p.partner_id not in day.of:  # the pair is opened once, by its first order
                day.open(index[p.channel_id], [o, by_id[p.partner_id]], now)
        else:
            day.open(index[p.channel_id], [o], now)
    return unplaced


def release(
    day: Day, due: list[SimOrder], now: float, weights: Weights, penalty: float, solve_ms: list[float]
) -> set[str]:
    """The optimizer's in-time round when no channel bundles: the due orders placed alone by one
    exact assignment (no fee, no reserve, any gain over the fallback); the ids of those left."""
    live = day.live(now)
    index = {c.id: j for j, c in enumerate(live)}
    pool = [CurrentAssignment(Delivery(o.order_id, o.pickup, o.dropoff, o.value, max(o.ready - now, 0.0)), None)
            for o in due]  # fmt: skip
    start = time.perf_counter()
    placed = reoptimize(pool, live, weights, threshold=0.0, deadline_ms=ROUND_DEADLINE_MS, fallback_penalty=penalty)
    solve_ms.append((time.perf_counter() - start) * 1000)
    by_id = {o.order_id: o for o in due}
    for p in placed:
        day.open(index[p.to_channel_id], [by_id.pop(p.order_id)], now)
    return set(by_id)


def roll(day: Day, now: float, weights: Weights, penalty: float, index: dict[str, int], reserve: int) -> None:
    """Re-solve the single-order trips whose courier has not reached the restaurant (the cut-off),
    and the fallen-back orders whose food is not ready; a move pays its old channel's fee and its
    gain must beat the fee + the threshold; moves leave `reserve` free slots on every channel."""
    live = day.live(now)
    pool = []
    for oid, tid in day.of.items():
        t = day.trips[tid]
        c = day.channels[t.channel]
        if len(t.orders) == 1 and t.assigned_at + c.pickup_latency_min * 60 > now:
            o = day.orders[oid]
            d = Delivery(oid, o.pickup, o.dropoff, o.value, max(o.ready - now, 0.0))
            pool.append(CurrentAssignment(d, c.id, t.deliver_at[oid] - now))
    for oid in day.fallbacks:
        o = day.orders[oid]
        if o.ready > now:
            pool.append(CurrentAssignment(Delivery(oid, o.pickup, o.dropoff, o.value, o.ready - now), None))
    if not pool:
        return
    moves = reoptimize(
        pool,
        live,
        weights,
        threshold=REOPT_THRESHOLD,
        fee_share=day.rules.fee_share,
        reserve=reserve,
        deadline_ms=500.0,
        fallback_penalty=penalty,
    )
    for m in moves:
        day.move(m.order_id, index[m.to_channel_id], now)


def summarize(
    day: Day, orders: list[SimOrder], rules: Rules, penalty: float, solve_ms: list[float], weights: Weights
) -> dict[str, Any]:
    books = check(
        {o.order_id: o for o in orders}, day.channels, list(day.trips.values()), day.moves, day.fallbacks, rules
    )
    live = [t for t in day.trips.values() if t.cancelled_at is None]
    on_time = sum(
        1 for t in live for oid, at in t.deliver_at.items() if at - day.orders[oid].created <= rules.on_time_s
    )
    shares = sum(sum(t.shares.values()) for t in live)
    if abs(shares - books.dollars) > 1e-6 * max(1.0, books.dollars):
        books.faults.append(f"the orders' shares {shares:.2f} != the trips {books.dollars:.2f}")
    spent = books.dollars + books.fees
    w = weights.normalized()
    points = w.cost * spent + sum(
        penalty + w.time * (day.orders[o].ready - day.orders[o].created) / 60 for o in day.fallbacks
    )
    for t in live:
        quality = w.quality * 100 * (1 - day.channels[t.channel].quality)
        points += sum(w.time * (at - day.orders[oid].created) / 60 + quality for oid, at in t.deliver_at.items())
    return {
        "orders": len(orders),
        "delivered": books.delivered,
        "fallbacks": books.fallbacks,
        "dollars_per_delivered": spent / max(books.delivered, 1),
        "dollars_per_delivered_with_penalties": (spent + penalty * books.fallbacks) / max(books.delivered, 1),
        "on_time_rate_all": on_time / len(orders),
        "trips_formed": sum(1 for t in live if len(t.orders) == 2),
        "joins": sum(1 for t in live if t.joined_at is not None),
        "moves": len(day.moves),
        "fees_paid": books.fees,
        "objective_points_per_order": points / len(orders),
        "books_faults": books.faults[:20],
        "books_fault_count": len(books.faults),
        "solve_ms": sorted(solve_ms),
    }
