"""Two-order trips (the synthetic day's `bundling` rules): route, cost split and the rules a trip keeps.

A trip is one courier of a bundling channel, one slot, one base cost: restaurant -> the nearer drop-off
-> the other one (haversine legs at the channel's speed). Pickup is at the later of every order's
ready time and the courier's arrival (its assignment + the channel's pickup latency). The trip's
dollars are split over its orders in proportion to their own restaurant -> drop-off distances. Times
are seconds from now, like `Delivery.ready_at`. Readings of the rules: docs/dispatch.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from uoom.assignment.geo import haversine_km
from uoom.domain.channels import Channel


@dataclass(frozen=True, slots=True)
class Bundling:
    """Which channels may carry two orders, and the trip rules (the day's `bundling` block)."""

    channels: frozenset[str]
    ready_within_s: float = 300.0
    on_time_s: float = 2700.0  # each order's own delivery - creation


@dataclass(frozen=True, slots=True)
class TripOrder:
    """An order as trips see it: `restaurant` identifies the pickup place (same restaurant = same
    string); `ready_at` seconds from now (<= 0: ready); `age_s` seconds since it was created."""

    order_id: str
    restaurant: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    ready_at: float = 0.0
    age_s: float = 0.0
    distance_km: float = field(init=False, compare=False)  # restaurant -> drop-off, computed once

    def __post_init__(self) -> None:
        object.__setattr__(self, "distance_km", haversine_km(self.pickup, self.dropoff))


@dataclass(frozen=True, slots=True)
class Route:
    """A planned trip: pickup and per-order delivery in seconds from now, dollars per order."""

    pickup_s: float
    deliver_s: tuple[float, ...]  # in the orders' given order
    dollars: float
    shares: tuple[float, ...]
    length_km: float


def legs(orders: Sequence[TripOrder]) -> tuple[int, float]:
    """(index of the order delivered first, km between the two drop-offs): a trip's geometry, the
    same on every channel. One order: (0, 0.0)."""
    if len(orders) == 1:
        return 0, 0.0
    first = 0 if orders[0].distance_km <= orders[1].distance_km else 1
    return first, haversine_km(orders[0].dropoff, orders[1].dropoff)


def route(
    channel: Channel, orders: Sequence[TripOrder], courier_at_s: float, geometry: tuple[int, float] | None = None
) -> Route:
    """The trip of `orders` (1 or 2) on `channel`, the courier at the restaurant `courier_at_s` from
    now; `geometry`: legs(orders), when the caller already has it."""
    pickup = max(courier_at_s, *(o.ready_at for o in orders))
    own = [o.distance_km for o in orders]
    s_per_km = 3600.0 / channel.speed_kmh
    first, between = geometry or legs(orders)
    times = [pickup + own[first] * s_per_km]
    if len(orders) == 2:
        times.append(times[0] + between * s_per_km)
        if first == 1:
            times.reverse()
    length = own[first] + between
    dollars = channel.base_cost + channel.cost_per_km * length
    total = sum(own)
    shares = tuple(dollars * d / total for d in own) if total > 0 else tuple(dollars / len(own) for _ in own)
    return Route(pickup, tuple(times), dollars, shares, length)


def trip_faults(channel: Channel, orders: Sequence[TripOrder], plan: Route, bundling: Bundling) -> list[str]:
    """Every bundling rule the two-order trip breaks (empty: a valid trip)."""
    faults = []
    if channel.id not in bundling.channels:
        faults.append(f"{channel.id} does not bundle")
    if len(orders) != 2:
        faults.append(f"a trip carries 2 orders, not {len(orders)}")
        return faults
    a, b = orders
    if a.restaurant != b.restaurant:
        faults.append("orders from two restaurants")
    if abs(a.ready_at - b.ready_at) > bundling.ready_within_s:
        faults.append("ready times too far apart")
    for o, deliver in zip(orders, plan.deliver_s, strict=True):
        if o.distance_km > channel.radius_km:
            faults.append(f"{o.order_id} drop-off outside the radius")
        if o.age_s + deliver > bundling.on_time_s:
            faults.append(f"{o.order_id} late")
    return faults
