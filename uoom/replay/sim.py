"""The day under the new rules: trips (one slot, one base cost), joins before pickup, moves with fees.

The state is a list of trips (uoom.replay.books.Trip); a policy opens, joins or cancels them
through `Day`, and the books are checked from that list afterwards.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import replace

from uoom.assignment.dispatch import OpenTrip
from uoom.assignment.trips import Bundling, TripOrder, route
from uoom.domain.channels import Channel
from uoom.replay.books import Move, Rules, Trip
from uoom.replay.day import SimOrder


class Day:
    def __init__(self, channels: list[Channel], rules: Rules) -> None:
        self.channels, self.rules = channels, rules
        self.bundling = Bundling(rules.bundling, rules.ready_within_s, rules.on_time_s)
        self.trips: dict[str, Trip] = {}
        self.of: dict[str, str] = {}  # order -> its live trip
        self.orders: dict[str, SimOrder] = {}
        self.moves: list[Move] = []
        self.fallbacks: set[str] = set()
        self.active: list[dict[str, float]] = [{} for _ in channels]
        self.expiry: list[list[tuple[float, str]]] = [[] for _ in channels]
        self.singles: dict[int, set[str]] = defaultdict(set)  # restaurant -> joinable single trips

    def live(self, now: float) -> list[Channel]:
        for j, heap in enumerate(self.expiry):
            while heap and heap[0][0] <= now:
                release, tid = heapq.heappop(heap)
                if self.active[j].get(tid) == release:
                    del self.active[j][tid]
        return [replace(c, load=len(self.active[j])) for j, c in enumerate(self.channels)]

    @staticmethod
    def as_trip_order(o: SimOrder, now: float) -> TripOrder:
        return TripOrder(o.order_id, str(o.restaurant), o.pickup, o.dropoff, o.ready - now, now - o.created)

    def _plan(self, t: Trip, now: float) -> None:
        c = self.channels[t.channel]
        mine = [self.as_trip_order(self.orders[oid], now) for oid in t.orders]
        plan = route(c, mine, t.assigned_at + c.pickup_latency_min * 60 - now)
        t.pickup_at = now + plan.pickup_s
        t.deliver_at = {o.order_id: now + s for o, s in zip(mine, plan.deliver_s, strict=True)}
        t.dollars = plan.dollars
        t.shares = dict(zip(t.orders, plan.shares, strict=True))
        release = t.release(self.rules.return_s)
        self.active[t.channel][t.trip_id] = release
        heapq.heappush(self.expiry[t.channel], (release, t.trip_id))

    def open(self, j: int, group: list[SimOrder], now: float) -> Trip:
        t = Trip(f"t{len(self.trips)}", j, [o.order_id for o in group], now, 0.0, {}, 0.0, {})
        self.trips[t.trip_id] = t
        for o in group:
            self.orders[o.order_id] = o
            self.of[o.order_id] = t.trip_id
        self._plan(t, now)
        if len(group) == 1 and self.channels[j].id in self.rules.bundling:
            self.singles[group[0].restaurant].add(t.trip_id)
        return t

    def join(self, trip_id: str, o: SimOrder, now: float) -> None:
        t = self.trips[trip_id]
        t.joined_at, t.pickup_before_join = now, t.pickup_at
        t.orders.append(o.order_id)
        self.orders[o.order_id] = o
        self.of[o.order_id] = trip_id
        self.singles[o.restaurant].discard(trip_id)
        self._plan(t, now)

    def fall_back(self, o: SimOrder) -> None:
        self.orders[o.order_id] = o
        self.fallbacks.add(o.order_id)

    def move(self, oid: str, j: int, now: float) -> None:
        """Cancel the order's single trip (its fee is paid) and open a new one on channel j."""
        o = self.orders[oid]
        if oid in self.fallbacks:
            self.fallbacks.discard(oid)
            self.open(j, [o], now)
            return
        old = self.trips[self.of[oid]]
        old.cancelled_at = now
        self.active[old.channel].pop(old.trip_id, None)
        self.singles[o.restaurant].discard(old.trip_id)
        new = self.open(j, [o], now)
        fee = self.rules.fee_share * self.channels[old.channel].base_cost
        self.moves.append(Move(oid, now, old.trip_id, new.trip_id, fee))

    def open_trips(self, restaurants: set[int], now: float) -> list[OpenTrip]:
        """Single-order trips on bundling channels at these restaurants, not picked up yet."""
        out = []
        for r in restaurants:
            for tid in list(self.singles[r]):
                t = self.trips[tid]
                if t.pickup_at <= now or t.cancelled_at is not None:
                    self.singles[r].discard(tid)
                    continue
                c = self.channels[t.channel]
                order = self.as_trip_order(self.orders[t.orders[0]], now)
                out.append(OpenTrip(tid, c.id, order, t.assigned_at + c.pickup_latency_min * 60 - now))
        return out
