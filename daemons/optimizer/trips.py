"""Two-order trips in the optimizer's batches (docs/dispatch.md, "Trips in the product").

When a live channel bundles and the batch's orders name their restaurant, the batch is solved with
`dispatch()`: each order a single, a pair with another order of the batch, or joining an open trip
(a one-order trip of the same restaurant, not picked up). `OpenTripsFeed` reads the open trips
from PostgreSQL every REFRESH_S in the background and answers a solve at once: one query per
solve, on the request path, made the optimizer miss the API's deadline under load
(bench/reports/platform-trips.md). While the feed cannot read them, solves go on without joins.
Orders on a bundling channel get a trip id: a fresh one for a new single or pair (both orders of
a pair share it), the open trip's for a join. Orders on other channels, and fallbacks, get none.
A dispatch failure is answered by `solve()`, as before trips.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from daemons.background import Background
from uoom.assignment import Bundling, Delivery, OpenTrip, Plan, Result, TripOrder, dispatch, solve
from uoom.assignment.model import Assignment, Ride
from uoom.assignment.trips import route
from uoom.domain.channels import Channel
from uoom.errors import describe
from uoom.live_channels import LiveView
from uoom.stores.open_trips import OpenTripRow

log = logging.getLogger("uoom.optimizer.trips")
OpenTrips = Callable[[Sequence[str]], list[OpenTripRow]]  # restaurants -> their joinable trips, at once
REFRESH_S = 0.2  # how stale the feed's open trips may be: a join it proposes that a trip no longer
# takes is refused at commit, and the order rides alone (uoom/stores/trips.py)
KEEP_ANSWERS_S = 2.0  # the optimizer's own answers outlive the reads of this long: their commits land sooner


@dataclass(frozen=True, slots=True)
class TripCounts:
    """What one solve planned: new pairs, joins of open trips, and singles on bundling channels."""

    pairs: int = 0
    joins: int = 0
    singles: int = 0


@dataclass(frozen=True, slots=True)
class Solved:
    result: Result
    rides: dict[str, Ride]
    counts: TripCounts


class TripPlanner:
    """`open_trips`: the joinable trips of some restaurants (the feed's); `on_plan` is told what
    each solve planned; `on_rides` what each solve answered (the feed learns its new trips before
    it reads them back)."""

    def __init__(self, open_trips: OpenTrips, ready_within_s: float, on_time_s: float,
                 on_plan: Callable[[TripCounts], None] = lambda counts: None,
                 on_rides: Callable[[Sequence[Delivery], Sequence[str | None], Solved], None]
                 = lambda deliveries, restaurants, solved: None) -> None:  # fmt: skip
        self.open_trips, self.on_plan, self.on_rides = open_trips, on_plan, on_rides
        self.ready_within_s, self.on_time_s = ready_within_s, on_time_s

    def bundling(self, live: LiveView) -> Bundling | None:
        ids = frozenset(c.id for c in live.channels if c.bundles)
        return Bundling(ids, self.ready_within_s, self.on_time_s) if ids else None

    @staticmethod
    def applies(live: LiveView, restaurants: Sequence[str | None]) -> bool:
        return any(c.bundles for c in live.channels) and any(restaurants)

    async def solve(self, deliveries: Sequence[Delivery], restaurants: Sequence[str | None], live: LiveView,
                    deadline_ms: float, fallback_penalty: float, *, inline: bool) -> Solved:  # fmt: skip
        """The batch's answer within `deadline_ms` (from now), trips included."""
        bundling = self.bundling(live)
        assert bundling is not None, "applies() first"
        rows = self.open_trips(sorted({r for r in restaurants if r}))
        work = (deliveries, restaurants, rows, live, bundling, deadline_ms, fallback_penalty)
        solved = plan(*work) if inline else await asyncio.to_thread(plan, *work)
        self.on_plan(solved.counts)
        self.on_rides(deliveries, restaurants, solved)
        return solved


class OpenTripsFeed(Background):
    """Every open trip, re-read every REFRESH_S; called with restaurants, it answers theirs at once
    (ages moved on by the time since the read). Until the first read, and while reads fail, none.

    The optimizer's own answers of the last KEEP_ANSWERS_S outlive a read: their orders commit a
    few milliseconds after the answer, often after a read has taken its snapshot, and the read
    would otherwise forget a new single the next order should join, or offer a trip just joined."""

    def __init__(self, read_all: Callable[[], Awaitable[list[OpenTripRow]]], refresh_s: float = REFRESH_S) -> None:
        self.read_all, self.refresh_s = read_all, refresh_s
        self.by_restaurant: dict[str, list[OpenTripRow]] = {}
        self.read_at = 0.0
        self.failing = False
        self.fresh: dict[str, tuple[float, OpenTripRow]] = {}  # trip id -> (answered at, its single as answered)
        self.joined: dict[str, float] = {}  # trip id -> answered at: full, whatever a read says

    async def run(self) -> None:
        while True:
            await self.read()
            await asyncio.sleep(self.refresh_s)

    async def read(self) -> None:
        """One read of every open trip; a failed one leaves none (solves go on without joins),
        with one warning per outage and one line when they are read again."""
        self._forget_before(time.monotonic() - KEEP_ANSWERS_S)  # also while reads fail: no growth in an outage
        try:
            rows = await self.read_all()
        except Exception as exc:  # noqa: BLE001 - reported once; the solves go on without joins
            if not self.failing:
                log.warning("open trips not read, solving without joins until they are: %s", describe(exc))
            self.failing, self.by_restaurant = True, {}
            return
        if self.failing:
            log.info("open trips read again: joins are back")
        self.failing, self.read_at, self.by_restaurant = False, time.monotonic(), {}
        read = set()
        for row in rows:
            read.add(row.trip_id)
            if row.trip_id not in self.joined:
                self.by_restaurant.setdefault(row.restaurant_id, []).append(row)
        for trip_id, (at, row) in self.fresh.items():
            if trip_id not in read and trip_id not in self.joined:
                self._offer(row, at)

    def answered(self, deliveries: Sequence[Delivery], restaurants: Sequence[str | None], solved: Solved) -> None:
        """What the optimizer just answered: a new single is joinable at once (orders of one
        restaurant seconds apart are the usual pair), a joined trip no longer is. A trip that is
        never committed is harmless: a join to it boards a trip of that id alone
        (uoom/stores/trips.py)."""
        now = time.monotonic()
        rides = solved.rides
        joined = {ride.trip_id for ride in rides.values() if ride.co_rider_id is not None}
        for d, r, a in zip(deliveries, restaurants, solved.result.assignments, strict=True):
            ride, place = rides.get(d.order_id), _place(r)
            if ride is None or place is None or a.channel_id is None or ride.co_rider_id is not None:
                continue
            row = OpenTripRow(
                ride.trip_id, a.channel_id, place, d.order_id, d.pickup, d.dropoff, 0.0, d.ready_at or 0.0
            )
            self.fresh[ride.trip_id] = (now, row)
            self._offer(row, now)
        if joined:
            self.joined.update(dict.fromkeys(joined, now))
            for place, rows in self.by_restaurant.items():
                self.by_restaurant[place] = [row for row in rows if row.trip_id not in joined]

    def __call__(self, restaurants: Sequence[str]) -> list[OpenTripRow]:
        since = time.monotonic() - self.read_at
        return [
            replace(row, age_s=row.age_s + since, ready_in_s=row.ready_in_s - since)
            for r in restaurants
            for row in self.by_restaurant.get(_place(r) or r, [])
        ]

    def _offer(self, row: OpenTripRow, answered_at: float) -> None:
        """A single answered at `answered_at`, aged as the rows of the last read are (to read_at)."""
        age = self.read_at - answered_at
        self.by_restaurant.setdefault(row.restaurant_id, []).append(
            replace(row, age_s=age, ready_in_s=row.ready_in_s - age)
        )

    def _forget_before(self, moment: float) -> None:
        self.fresh = {t: entry for t, entry in self.fresh.items() if entry[0] >= moment}
        self.joined = {t: at for t, at in self.joined.items() if at >= moment}


def plan(
    deliveries: Sequence[Delivery],
    restaurants: Sequence[str | None],
    rows: Sequence[OpenTripRow],
    live: LiveView,
    bundling: Bundling,
    deadline_ms: float,
    fallback_penalty: float,
) -> Solved:
    """`dispatch()` on the batch and the open trips; `solve()` (no trips) when the deadline is spent
    or dispatch fails."""
    if deadline_ms <= 0:
        return Solved(solve(deliveries, live.channels, live.weights, 0.0, fallback_penalty), {}, TripCounts())
    orders = [
        TripOrder(d.order_id, _place(r) or f"order:{d.order_id}", d.pickup, d.dropoff, d.ready_at or 0.0)
        for d, r in zip(deliveries, restaurants, strict=True)
    ]
    trips = open_trips(rows, live.channels)
    try:
        answer = dispatch(orders, live.channels, live.weights, bundling=bundling, open_trips=trips,
                          deadline_ms=deadline_ms, fallback_penalty=fallback_penalty)  # fmt: skip
    except Exception:
        log.exception("dispatch failed on %d orders x %d channels: solved without trips", len(orders), len(trips))
        return Solved(solve(deliveries, live.channels, live.weights, deadline_ms, fallback_penalty), {}, TripCounts())
    return answered(answer, orders, live.channels, trips, bundling, fallback_penalty)


def open_trips(rows: Sequence[OpenTripRow], channels: Sequence[Channel]) -> list[OpenTrip]:
    """The model's open trips: their courier reaches the restaurant the channel's pickup latency
    after the rider's assignment (its creation: an order in a trip is never moved)."""
    latency = {c.id: c.pickup_latency_min * 60.0 for c in channels}
    trips = []
    for r in rows:
        if r.channel_id in latency:
            rider = TripOrder(r.order_id, _place(r.restaurant_id) or "", r.pickup, r.dropoff, r.ready_in_s, r.age_s)
            trips.append(OpenTrip(r.trip_id, r.channel_id, rider, latency[r.channel_id] - r.age_s))
    return trips


def answered(
    answer: Plan,
    orders: Sequence[TripOrder],
    channels: Sequence[Channel],
    trips: Sequence[OpenTrip],
    bundling: Bundling,
    fallback_penalty: float,
) -> Solved:
    """The plan as the contract's assignments, each trip rider's `Ride`, and what was planned."""
    by_id = {c.id: c for c in channels}
    by_order = {o.order_id: o for o in orders}
    by_trip = {t.trip_id: t for t in trips}
    penalty = Decimal(f"{fallback_penalty:.2f}")
    assignments, rides = [], {}
    pairs = joins = singles = 0
    for o, p in zip(orders, answer.placements, strict=True):
        if p.channel_id is None:
            assignments.append(Assignment(o.order_id, None, penalty, None))
            continue
        c = by_id[p.channel_id]
        assignments.append(Assignment(o.order_id, c.id, Decimal(f"{p.dollars:.2f}"), round(p.deliver_s or 0.0)))
        if c.id not in bundling.channels:
            continue
        if p.trip_id is not None:  # a join: the open trip's courier is on the way
            trip = by_trip[p.trip_id]
            pickup = route(c, [trip.order, o], trip.courier_at_s).pickup_s
            rides[o.order_id] = Ride(p.trip_id, p.partner_id, pickup, p.co_rider_dollars, p.co_rider_deliver_s)
            joins += 1
        elif p.partner_id is not None:  # a new pair: the second of the two takes the first's id
            partner = rides.get(p.partner_id)
            pickup = route(c, [o, by_order[p.partner_id]], c.pickup_latency_min * 60.0).pickup_s
            trip_id = partner.trip_id if partner else str(uuid.uuid4())
            rides[o.order_id] = Ride(trip_id, p.partner_id, pickup, p.co_rider_dollars, p.co_rider_deliver_s)
            pairs += partner is not None
        else:
            rides[o.order_id] = Ride(str(uuid.uuid4()), None, max(c.pickup_latency_min * 60.0, o.ready_at))
            singles += 1
    result = Result(tuple(assignments), answer.status, answer.solve_ms, answer.objective)
    return Solved(result, rides, TripCounts(pairs, joins, singles))


def _place(restaurant: str | None) -> str | None:
    """One spelling per restaurant: a uuid in its canonical form, anything else as given."""
    if not restaurant:
        return None
    try:
        return str(uuid.UUID(restaurant))
    except ValueError:
        return restaurant
