"""The books of a simulated day, checked from the raw records (its own arithmetic, not the simulation's).

Checks: every order delivered once or in the fallback; a trip carries at most two orders, from one
restaurant, ready within the window, on a bundling channel, each order on time, joined before
pickup; every drop-off within the channel's radius; pickup and delivery times follow the route;
dollars = base + per km x route and the split sums to it; no channel over capacity at any instant
(a trip is one slot from assignment to last delivery + return, or to its cancellation); a move only
before the courier reaches the restaurant, paying the old channel's fee.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from uoom.assignment.geo import haversine_km
from uoom.domain.channels import Channel
from uoom.replay.day import SimOrder

EPS = 1e-6


@dataclass(slots=True)
class Trip:
    trip_id: str
    channel: int
    orders: list[str]
    assigned_at: float
    pickup_at: float
    deliver_at: dict[str, float]
    dollars: float
    shares: dict[str, float]
    joined_at: float | None = None
    pickup_before_join: float | None = None
    cancelled_at: float | None = None  # its (single) order moved away before pickup

    def release(self, return_s: float) -> float:
        return self.cancelled_at if self.cancelled_at is not None else max(self.deliver_at.values()) + return_s


@dataclass(frozen=True, slots=True)
class Move:
    order_id: str
    at: float
    from_trip: str
    to_trip: str
    fee: float


@dataclass(frozen=True, slots=True)
class Rules:
    bundling: frozenset[str]
    ready_within_s: float = 300.0
    on_time_s: float = 2700.0
    fee_share: float = 0.5
    return_s: float = 600.0

    @classmethod
    def of_day(cls, day: dict[str, Any]) -> Rules:
        return cls(
            frozenset(day["bundling"]["channels"]),
            day["bundling"]["ready_within_minutes"] * 60.0,
            day["orders"]["on_time_target_minutes"] * 60.0,
            day["reassignment"]["fee_share_of_base_cost"],
        )


@dataclass(frozen=True, slots=True)
class Books:
    faults: list[str]
    dollars: float  # trips actually run
    fees: float
    delivered: int
    fallbacks: int


def check(
    orders: Mapping[str, SimOrder],
    channels: Sequence[Channel],
    trips: Sequence[Trip],
    moves: Sequence[Move],
    fallbacks: set[str],
    rules: Rules,
) -> Books:
    faults: list[str] = []
    carried: dict[str, int] = {}
    for t in trips:
        if t.cancelled_at is None:
            for oid in t.orders:
                carried[oid] = carried.get(oid, 0) + 1
        faults += _trip_faults(t, orders, channels[t.channel], rules)
    for oid in orders:
        placed = carried.get(oid, 0) + (oid in fallbacks)
        if placed != 1:
            faults.append(f"{oid}: placed {placed} times")
    faults += _capacity_faults(trips, channels, rules)
    faults += _move_faults(trips, moves, channels, rules)
    live = [t for t in trips if t.cancelled_at is None]
    return Books(
        faults,
        sum(t.dollars for t in live),
        sum(m.fee for m in moves),
        sum(len(t.orders) for t in live),
        len(fallbacks),
    )


def _trip_faults(t: Trip, orders: Mapping[str, SimOrder], c: Channel, rules: Rules) -> list[str]:
    out = []
    mine = [orders[oid] for oid in t.orders]
    if not 1 <= len(mine) <= 2:
        return [f"{t.trip_id}: {len(mine)} orders"]
    own = [haversine_km(o.pickup, o.dropoff) for o in mine]
    out += [f"{t.trip_id}: {o.order_id} outside the radius" for o, d in zip(mine, own, strict=True) if d > c.radius_km]
    courier = t.assigned_at + c.pickup_latency_min * 60
    if abs(t.pickup_at - max(courier, *(o.ready for o in mine))) > EPS:
        out.append(f"{t.trip_id}: pickup at the wrong time")
    s_per_km = 3600 / c.speed_kmh
    if len(mine) == 1:
        length, expected = own[0], {mine[0].order_id: t.pickup_at + own[0] * s_per_km}
    else:
        a, b = sorted(range(2), key=lambda k: own[k])
        between = haversine_km(mine[a].dropoff, mine[b].dropoff)
        length = own[a] + between
        first = t.pickup_at + own[a] * s_per_km
        expected = {mine[a].order_id: first, mine[b].order_id: first + between * s_per_km}
        if c.id not in rules.bundling:
            out.append(f"{t.trip_id}: two orders on {c.id}, which does not bundle")
        if mine[0].restaurant != mine[1].restaurant:
            out.append(f"{t.trip_id}: two restaurants")
        if abs(mine[0].ready - mine[1].ready) > rules.ready_within_s + EPS:
            out.append(f"{t.trip_id}: ready times too far apart")
        out += [
            f"{t.trip_id}: {o.order_id} late in a trip"
            for o in mine
            if expected[o.order_id] - o.created > rules.on_time_s + EPS
        ]
        if t.joined_at is not None and (t.pickup_before_join is None or t.joined_at >= t.pickup_before_join):
            out.append(f"{t.trip_id}: joined after pickup")
    if any(abs(t.deliver_at.get(oid, -1.0) - when) > EPS for oid, when in expected.items()):
        out.append(f"{t.trip_id}: delivery times do not follow the route")
    if abs(t.dollars - (c.base_cost + c.cost_per_km * length)) > EPS:
        out.append(f"{t.trip_id}: dollars do not match the route")
    if abs(sum(t.shares.values()) - t.dollars) > EPS:
        out.append(f"{t.trip_id}: the split does not sum to the trip")
    return out


def _capacity_faults(trips: Sequence[Trip], channels: Sequence[Channel], rules: Rules) -> list[str]:
    events: list[tuple[float, int, int]] = []  # (time, +1/-1, channel); releases sort first
    for t in trips:
        events.append((t.assigned_at, 1, t.channel))
        events.append((t.release(rules.return_s), -1, t.channel))
    held = [0] * len(channels)
    out = []
    for when, step, j in sorted(events):
        held[j] += step
        if held[j] > channels[j].capacity:
            out.append(f"{channels[j].id}: {held[j]} slots held at {when:.0f} s > capacity {channels[j].capacity}")
    return out


def _move_faults(trips: Sequence[Trip], moves: Sequence[Move], channels: Sequence[Channel], rules: Rules) -> list[str]:
    by_id = {t.trip_id: t for t in trips}
    out = []
    moved = set()
    for m in moves:
        old, new = by_id.get(m.from_trip), by_id.get(m.to_trip)
        if old is None or new is None or m.order_id not in old.orders or m.order_id not in new.orders:
            out.append(f"move of {m.order_id}: unknown trips")
            continue
        moved.add(old.trip_id)
        c = channels[old.channel]
        if len(old.orders) != 1 or old.cancelled_at != m.at or new.assigned_at != m.at:
            out.append(f"move of {m.order_id}: the old trip is not cancelled when the new one starts")
        if m.at >= old.assigned_at + c.pickup_latency_min * 60 - EPS:
            out.append(f"move of {m.order_id}: after the courier reached the restaurant")
        if abs(m.fee - rules.fee_share * c.base_cost) > EPS:
            out.append(f"move of {m.order_id}: fee {m.fee:.2f} != {rules.fee_share * c.base_cost:.2f}")
    out += [
        f"{t.trip_id}: cancelled without a move" for t in trips if t.cancelled_at is not None and t.trip_id not in moved
    ]
    return out
