"""One entry point for dispatch with two-order trips: `dispatch` picks the formulation.

Without a trip option (no bundling, or no two orders that may share a courier) the problem is a pure
assignment with capacities: an exact min-cost flow solves it (exact.py). With trip options it is set
partitioning (each order takes one of: a single on a channel, a pair with another new order on a
bundling channel, joining an open trip, the fallback; a single or a pair holds one slot; an open trip
takes one joiner). First the trips are priced against the flow's duals (pricing.py): a primal
answer and a proven Lagrangian lower bound in a few flow solves. If the proven gap is above
GAP_TARGET, the problem small enough for CP-SAT to prove in time (MAX_SEARCH_PAIRS) and time is
left, CP-SAT searches the full model from that answer (trip_model.py) until the deadline and keeps
the better one. `Plan.gap` is (objective - best proven bound) / objective.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Literal

from uoom.assignment.costs import NO_CHANNEL, SCALE, CostTable, build_cost_table, dollars, eta_seconds
from uoom.assignment.engine import DEFAULT_DEADLINE_MS, DEFAULT_FALLBACK_PENALTY, DEFAULT_WEIGHTS, MARGIN_S
from uoom.assignment.exact import exact_choice
from uoom.assignment.model import Delivery, Status
from uoom.assignment.pricing import priced
from uoom.assignment.trip_model import Option, solve_options
from uoom.assignment.trips import Bundling, Route, TripOrder, legs, route, trip_faults
from uoom.domain.channels import Channel, Weights

log = logging.getLogger(__name__)
GAP_TARGET = 0.005  # below this proven gap the priced answer is final; above it CP-SAT searches
MIN_SEARCH_S = 0.005  # less time than this left: no CP-SAT (it would not even finish its set-up)
# Above this many orders x channels CP-SAT does not prove anything within tens of ms (200 x 12 took
# 100-900 ms): the priced answer is final there unless gap_target is 0 (an exact reference).
MAX_SEARCH_PAIRS = 600


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
    `trip_id`: the open trip it joins; `dollars`: its share of the trip; `deliver_s` from now."""

    order_id: str
    channel_id: str | None
    partner_id: str | None = None
    trip_id: str | None = None
    dollars: float = 0.0
    deliver_s: float | None = None


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
    deliveries = [Delivery(o.order_id, o.pickup, o.dropoff, 0.0, o.ready_at) for o in orders]
    table = build_cost_table(deliveries, channels, weights, fallback_penalty)
    extra = trip_options(orders, channels, weights, bundling, open_trips, table.fallback) if bundling else []
    if not extra:
        choice = exact_choice(table)
        total = sum(dict(table.options[i])[j] if j >= 0 else table.fallback[i] or 0 for i, j in enumerate(choice))
        placements = _placements(orders, channels, [], choice, open_trips)
        return Plan(placements, "flow", "OPTIMAL", total, total, (perf_counter() - start) * 1000)
    taken, choice, total, bound = priced(table, extra)
    formulation: Literal["priced", "cpsat"] = "priced"
    status: Status = "OPTIMAL" if total == bound else "FEASIBLE"
    budget = deadline_ms / 1000 - (perf_counter() - start) - MARGIN_S
    search = gap_target == 0 or len(table.options) * len(table.free) <= MAX_SEARCH_PAIRS
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
    for members in by_restaurant.values():
        for x, a in enumerate(members):
            for b in members[x + 1 :]:
                pair = (orders[a], orders[b])
                if abs(pair[0].ready_at - pair[1].ready_at) > bundling.ready_within_s:
                    continue
                geometry, farthest = legs(pair), max(pair[0].distance_km, pair[1].distance_km)
                for j in bundlers:
                    c = channels[j]
                    if farthest > c.radius_km:
                        continue
                    plan = route(c, pair, c.pickup_latency_min * 60.0, geometry)
                    if trip_faults(c, pair, plan, bundling):
                        continue
                    fill = (c.load + 1) / c.capacity if c.capacity else 1.0
                    cost = _points(plan, c, w, 2) + w.capacity * 100.0 * fill
                    scaled = int(cost * SCALE + 0.5)
                    if scaled < (fallback[a] or 0) + (fallback[b] or 0):
                        out.append(Option((a, b), j, -1, scaled))
    for t, trip in enumerate(open_trips):
        j = index.get(trip.channel_id, -1)
        if j < 0 or trip.channel_id not in bundling.channels:
            continue
        c = channels[j]
        alone = route(c, [trip.order], trip.courier_at_s)
        if alone.pickup_s <= 0:  # picked up already
            continue
        for i in by_restaurant.get(trip.order.restaurant, []):
            pair = (trip.order, orders[i])
            plan = route(c, pair, trip.courier_at_s)
            if trip_faults(c, pair, plan, bundling):
                continue
            cost = int((_points(plan, c, w, 2) - _points(alone, c, w, 1)) * SCALE + 0.5)
            if cost < (fallback[i] or 0):
                out.append(Option((i,), j, t, cost))
    return out


def _points(plan: Route, channel: Channel, w: Weights, riders: int) -> float:
    """The trip's score without the capacity term (the slot is counted once, by the caller)."""
    quality = w.quality * 100.0 * (1.0 - channel.quality)
    return w.cost * plan.dollars + w.time * sum(plan.deliver_s) / 60.0 + riders * quality


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
            out[i] = Placement(
                orders[i].order_id, c.id, trip.order.order_id, trip.trip_id, plan.shares[1], plan.deliver_s[1]
            )
        else:
            a, b = option.orders
            plan = route(c, [orders[a], orders[b]], c.pickup_latency_min * 60.0)
            out[a] = Placement(orders[a].order_id, c.id, orders[b].order_id, None, plan.shares[0], plan.deliver_s[0])
            out[b] = Placement(orders[b].order_id, c.id, orders[a].order_id, None, plan.shares[1], plan.deliver_s[1])
    for i, j in enumerate(choice):
        if j >= 0 and i not in out:
            o, c = orders[i], channels[j]
            out[i] = Placement(
                o.order_id, c.id, None, None, dollars(o.distance_km, c), eta_seconds(o.distance_km, o.ready_at, c)
            )
    return tuple(out.get(i, Placement(o.order_id, None)) for i, o in enumerate(orders))
