"""One entry point for dispatch with two-order trips: `dispatch` picks the formulation.

Without a trip option (no bundling, or no two orders that may share a courier) the problem is a pure
assignment with capacities: an exact min-cost flow solves it (exact.py). With trip options it is set
partitioning (each order takes one of: a single on a channel, a pair with another new order on a
bundling channel, joining an open trip, the fallback; a single or a pair holds one slot; an open trip
takes one joiner). One order alone takes its cheapest option (exact, no solver). Otherwise the trips
are priced (pricing.py): a Lagrangian relaxation of the capacities proposes trips and proves a lower
bound, and min-cost flows with the proposed pairs as rows place everything else exactly; while the
proven gap is above GAP_TARGET and time is left, a local search there changes one trip at a time,
each change checked by a flow solve. If the gap is still above GAP_TARGET, the problem small enough
for CP-SAT to prove in time (MAX_SEARCH_PAIRS) and time is left, CP-SAT searches the full model
from that answer (trip_model.py) until the deadline and keeps the better one. `Plan.gap` is
(objective - best proven bound) / objective.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Literal

from uoom.assignment.costs import LARGE, NO_CHANNEL, SCALE, CostTable, cost_table, dollars, eta_seconds
from uoom.assignment.engine import DEFAULT_DEADLINE_MS, DEFAULT_FALLBACK_PENALTY, DEFAULT_WEIGHTS, MARGIN_S
from uoom.assignment.exact import exact_choice
from uoom.assignment.model import Status
from uoom.assignment.pricing import priced
from uoom.assignment.trip_model import Option, solve_options
from uoom.assignment.trips import Bundling, TripOrder, legs, route
from uoom.domain.channels import Channel, Weights

log = logging.getLogger(__name__)
GAP_TARGET = 0.005  # below this proven gap the priced answer is final; above it a local search, then CP-SAT
PRICED_MARGIN_S = 0.006  # no improvement starts later than this before the deadline (a flow solve + the answer)
MIN_SEARCH_S = 0.005  # less time than this left: no CP-SAT (it would not even finish its set-up)
# Above this many orders x channels CP-SAT does not prove anything within tens of ms (200 x 12 took
# 100-900 ms): the priced answer is final there unless gap_target is 0 (an exact reference).
MAX_SEARCH_PAIRS = 600
# The in-time rounds (the optimizer's, daemons/optimizer/reoptimizer.py, and the replay's) solve
# with these. A round answers no request: it may take a second, not a request's 80 ms; cut short,
# it places nothing, and a backlog (after an outage, on a busy machine) would never be placed.
ROUND_DEADLINE_MS = 1000.0
# Due orders per dispatch() with trips in a round: its pricing grows faster than the orders (500
# orders of 15 restaurants with 3,000 open trips: 2-4 s of CPU with the GIL held, the create path's
# solves stalled behind it; 20: a few ms). A later part joins the trips an earlier one opened.
ROUND_PART_ORDERS = 20


@dataclass(frozen=True, slots=True)
class OpenTrip:
    """A single-order trip already assigned and not picked up: a new order may join it."""

    trip_id: str
    channel_id: str
    order: TripOrder
    courier_at_s: float  # when its courier reaches the restaurant, seconds from now


@dataclass(frozen=True, slots=True)
class Placement:
    """One order's answer. `partner_id`: its co-rider (a new order, or the open trip's order);
    `trip_id`: the open trip it joins; `dollars`: its share of the trip; `deliver_s` from now.
    In a trip, `co_rider_dollars` and `co_rider_deliver_s` are the co-rider's share and delivery
    time (from now) in the same route: a join re-prices and re-times the open trip's order, and the
    two shares sum to the trip's dollars."""

    order_id: str
    channel_id: str | None
    partner_id: str | None = None
    trip_id: str | None = None
    dollars: float = 0.0
    deliver_s: float | None = None
    co_rider_dollars: float | None = None
    co_rider_deliver_s: float | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """`objective` and `bound` in milli-points; `formulation` says which solver answered."""

    placements: tuple[Placement, ...]
    formulation: Literal["flow", "priced", "cpsat"]
    status: Status
    objective: int
    bound: int
    solve_ms: float

    @property
    def gap(self) -> float:
        """(objective - proven bound) / objective; 0.0 when proven optimal."""
        return (self.objective - self.bound) / self.objective if self.objective > 0 else 0.0


def dispatch(
    orders: Sequence[TripOrder],
    channels: Sequence[Channel],
    weights: Weights = DEFAULT_WEIGHTS,
    *,
    bundling: Bundling | None = None,
    open_trips: Sequence[OpenTrip] = (),
    deadline_ms: float = DEFAULT_DEADLINE_MS,
    fallback_penalty: float = DEFAULT_FALLBACK_PENALTY,
    gap_target: float = GAP_TARGET,
) -> Plan:
    """A placement per order (input order), within `deadline_ms` of wall clock, build included.
    `gap_target` 0 makes CP-SAT search until proven optimal or the deadline (an exact reference)."""
    start = perf_counter()
    table = cost_table(
        [o.distance_km for o in orders], [o.ready_at for o in orders], channels, weights, fallback_penalty
    )
    extra = trip_options(orders, channels, weights, bundling, open_trips, table.fallback) if bundling else []
    if len(orders) == 1:  # one order: its cheapest option is the optimum, no solver needed
        taken, choice, total = _cheapest(table, extra)
        placements = _placements(orders, channels, taken, choice, open_trips)
        return Plan(placements, "priced" if extra else "flow", "OPTIMAL", total, total, (perf_counter() - start) * 1000)
    if not extra:
        choice = exact_choice(table)
        total = sum(int(table.dense[i, j]) if j >= 0 else table.fallback[i] or 0 for i, j in enumerate(choice))
        placements = _placements(orders, channels, [], choice, open_trips)
        return Plan(placements, "flow", "OPTIMAL", total, total, (perf_counter() - start) * 1000)
    taken, choice, total, bound = priced(table, extra, start + deadline_ms / 1000 - PRICED_MARGIN_S, gap_target)
    formulation: Literal["priced", "cpsat"] = "priced"
    status: Status = "OPTIMAL" if total == bound else "FEASIBLE"
    budget = deadline_ms / 1000 - (perf_counter() - start) - MARGIN_S
    search = gap_target == 0 or table.dense.size <= MAX_SEARCH_PAIRS
    if search and total - bound > gap_target * total and budget > MIN_SEARCH_S:
        formulation = "cpsat"
        try:
            found = _search(table, extra, len(open_trips), taken, choice, budget)
        except Exception:  # the priced answer stands: a solver failure never fails a dispatch
            log.exception("CP-SAT failed on %d orders x %d channels", len(orders), len(channels))
        else:
            if found[0] != "FALLBACK":
                status, picked, total, bound = found[0], found[1], found[2], max(bound, found[3])
                taken = [o for o in picked if len(o.orders) == 2 or o.trip >= 0]
                choice = [NO_CHANNEL] * len(orders)
                for o in picked:
                    if len(o.orders) == 1 and o.trip < 0:
                        choice[o.orders[0]] = o.channel
    placements = _placements(orders, channels, taken, choice, open_trips)
    return Plan(placements, formulation, status, total, bound, (perf_counter() - start) * 1000)


def _cheapest(table: CostTable, extra: Sequence[Option]) -> tuple[list[Option], list[int], int]:
    """One order's best option (a single, joining an open trip, or the fallback): (taken, choice,
    objective). ValueError if it has none (no channel and no fallback)."""
    row = table.dense[0]
    j = int(row.argmin()) if row.size else NO_CHANNEL
    best: tuple[int, int, Option | None] = (LARGE, NO_CHANNEL, None)
    if table.fallback[0] is not None:
        best = (table.fallback[0], NO_CHANNEL, None)
    if j != NO_CHANNEL and row[j] < best[0]:
        best = (int(row[j]), j, None)
    for o in extra:
        if o.cost < best[0]:
            best = (o.cost, NO_CHANNEL, o)
    if best[0] >= LARGE:
        raise ValueError("no feasible assignment: the order has no channel and may not fall back")
    return ([best[2]] if best[2] else []), [best[1]], best[0]


def _search(
    table: CostTable, extra: list[Option], trips: int, taken: list[Option], choice: list[int], budget_s: float
) -> tuple[Status, list[Option], int, int]:
    """CP-SAT on every option, from the priced answer."""
    singles: list[Option] = []
    hint: list[int] = []
    for i, row in enumerate(table.options):
        for j, c in row:
            if choice[i] == j:
                hint.append(len(singles))
            singles.append(Option((i,), j, -1, c))
    chosen = set(taken)
    hint += [len(singles) + k for k, o in enumerate(extra) if o in chosen]
    fallback = [f or 0 for f in table.fallback]
    return solve_options([*singles, *extra], fallback, table.free, trips, hint, budget_s)


def trip_options(
    orders: Sequence[TripOrder],
    channels: Sequence[Channel],
    weights: Weights,
    bundling: Bundling,
    open_trips: Sequence[OpenTrip],
    fallback: Sequence[int | None],
) -> list[Option]:
    """Pairs of new orders on a bundling channel with a free slot, and joins of open trips, that keep
    every bundling rule and cost less than their orders' fallbacks."""
    w = weights.normalized()
    by_restaurant: dict[str, list[int]] = defaultdict(list)
    for i, o in enumerate(orders):
        by_restaurant[o.restaurant].append(i)
    index = {c.id: j for j, c in enumerate(channels)}
    bundlers = [j for j, c in enumerate(channels) if c.id in bundling.channels and c.free > 0]
    out = []
    # route() and trip_faults() inlined (the same float operations, so the same integers): these loops
    # run for every pair of one restaurant's orders on every bundling channel, and every join.
    terms = []
    for j in bundlers:
        c = channels[j]
        fill = (c.load + 1) / c.capacity if c.capacity else 1.0
        fixed = 2 * (w.quality * 100.0 * (1.0 - c.quality))
        terms.append(
            (j, c, c.radius_km, c.pickup_latency_min * 60.0, 3600.0 / c.speed_kmh, fixed, w.capacity * 100.0 * fill)
        )
    on_time = bundling.on_time_s
    joins: list[Option] = []
    for members in by_restaurant.values():
        if len(members) < 2:
            continue
        for x, a in enumerate(members):
            for b in members[x + 1 :]:
                oa, ob = orders[a], orders[b]
                if abs(oa.ready_at - ob.ready_at) > bundling.ready_within_s:
                    continue
                first, between = legs((oa, ob))
                near = oa.distance_km if first == 0 else ob.distance_km
                farthest = max(oa.distance_km, ob.distance_km)
                ready = max(oa.ready_at, ob.ready_at)
                limit = (fallback[a] or 0) + (fallback[b] or 0)
                for j, c, radius, latency, s_per_km, quality, capacity in terms:
                    if farthest > radius:
                        continue
                    pickup = max(latency, ready)
                    t_first = pickup + near * s_per_km
                    t_second = t_first + between * s_per_km
                    da, db = (t_first, t_second) if first == 0 else (t_second, t_first)
                    if oa.age_s + da > on_time or ob.age_s + db > on_time:
                        continue
                    money = c.base_cost + c.cost_per_km * (near + between)
                    cost = w.cost * money + w.time * (da + db) / 60.0 + quality + capacity
                    scaled = int(cost * SCALE + 0.5)
                    if scaled < limit:
                        out.append(Option((a, b), j, -1, scaled))
    for t, trip in enumerate(open_trips):
        j = index.get(trip.channel_id, -1)
        joiners = by_restaurant.get(trip.order.restaurant)
        if j < 0 or not joiners or trip.channel_id not in bundling.channels:
            continue
        c, first_order = channels[j], trip.order
        pickup = max(trip.courier_at_s, first_order.ready_at)
        if pickup <= 0:  # picked up already
            continue
        s_per_km, quality = 3600.0 / c.speed_kmh, w.quality * 100.0 * (1.0 - c.quality)
        money = c.base_cost + c.cost_per_km * first_order.distance_km
        alone = w.cost * money + w.time * (pickup + first_order.distance_km * s_per_km) / 60.0 + quality
        for i in joiners:
            o = orders[i]
            if abs(first_order.ready_at - o.ready_at) > bundling.ready_within_s:
                continue
            if max(first_order.distance_km, o.distance_km) > c.radius_km:
                continue
            first, between = legs((first_order, o))
            near = first_order.distance_km if first == 0 else o.distance_km
            t_first = max(trip.courier_at_s, first_order.ready_at, o.ready_at) + near * s_per_km
            t_second = t_first + between * s_per_km
            da, db = (t_first, t_second) if first == 0 else (t_second, t_first)
            if first_order.age_s + da > on_time or o.age_s + db > on_time:
                continue
            money = c.base_cost + c.cost_per_km * (near + between)
            both = w.cost * money + w.time * (da + db) / 60.0 + 2 * quality
            cost = int((both - alone) * SCALE + 0.5)
            if cost < (fallback[i] or 0):
                joins.append(Option((i,), j, t, cost))
    keep = {i: len(members) for members in by_restaurant.values() for i in members}
    return out + _best_joins(joins, keep)


def _best_joins(joins: list[Option], keep: Mapping[int, int]) -> list[Option]:
    """Each order's `keep[order]` cheapest joins (in their given order). Exact with `keep` = the
    batch's orders of the order's restaurant: only they may join its restaurant's open trips, so
    the others take at most keep - 1 of them; a join holds no slot of its own and its cost depends
    on its order and trip alone, so an order joining a trip beyond its `keep` best could join a
    free one of those for less. A restaurant with dozens of open trips otherwise gave every order
    dozens of options, and a round of a hundred orders (dispatch_policy in-time) a hundred each:
    seconds of pricing."""
    ranked: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for k, option in enumerate(joins):
        ranked[option.orders[0]].append((option.cost, k))
    if all(len(options) <= keep[i] for i, options in ranked.items()):
        return joins
    kept = {k for i, options in ranked.items() for _, k in sorted(options)[: keep[i]]}
    return [option for k, option in enumerate(joins) if k in kept]


def _placements(
    orders: Sequence[TripOrder],
    channels: Sequence[Channel],
    taken: Sequence[Option],
    choice: Sequence[int],
    open_trips: Sequence[OpenTrip],
) -> tuple[Placement, ...]:
    """Trip options from `taken`, singles from `choice` (NO_CHANNEL: the fallback, or on a trip)."""
    out: dict[int, Placement] = {}
    for option in taken:
        c = channels[option.channel]
        if option.trip >= 0:
            trip = open_trips[option.trip]
            (i,) = option.orders
            plan = route(c, [trip.order, orders[i]], trip.courier_at_s)
            out[i] = Placement(orders[i].order_id, c.id, trip.order.order_id, trip.trip_id, plan.shares[1],
                               plan.deliver_s[1], plan.shares[0], plan.deliver_s[0])  # fmt: skip
        else:
            a, b = option.orders
            plan = route(c, [orders[a], orders[b]], c.pickup_latency_min * 60.0)
            (sa, sb), (da, db) = plan.shares, plan.deliver_s
            out[a] = Placement(orders[a].order_id, c.id, orders[b].order_id, None, sa, da, sb, db)
            out[b] = Placement(orders[b].order_id, c.id, orders[a].order_id, None, sb, db, sa, da)
    for i, j in enumerate(choice):
        if j >= 0 and i not in out:
            o, c = orders[i], channels[j]
            out[i] = Placement(
                o.order_id, c.id, None, None, dollars(o.distance_km, c), eta_seconds(o.distance_km, o.ready_at, c)
            )
    return tuple(out[i] if i in out else Placement(o.order_id, None) for i, o in enumerate(orders))
