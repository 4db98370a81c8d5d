"""Per (order, channel) cost, ETA and score, and the integer problem every solver works on.

The score of a pair is in "points", comparable with the fallback penalty:

    score = w.cost * dollars + w.time * eta_minutes
          + w.quality * 100 * (1 - quality)             # percentage points of late deliveries
          + w.capacity * 100 * (load + 1) / capacity    # how full the pair leaves the channel

with the weights normalized to sum 1, so with cost-only weights a point is a dollar. The fallback
scores `fallback_penalty` points (the synthetic day's $25) plus the time weight of the kitchen
wait (`ready_at`): every channel pays that wait too, so a slow kitchen never pushes an order to
the fallback, only dear or slow channels do. Solvers see integers: milli-points (`SCALE`),
rounded once per pair, so every solver optimizes the very same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from uoom.assignment.geo import haversine_km
from uoom.assignment.model import Assignment, Channel, Order, Weights

SCALE = 1000
FALLBACK = -1  # the choice of "no channel"


@dataclass(slots=True)
class Problem:
    """Integers only. `options[i]`: (channel index, cost) of the pairs worth considering for order
    i; `fallback[i]`: cost of the fallback, None when order i must get a channel; `free[j]`: slots
    left on channel j."""

    options: list[list[tuple[int, int]]]
    fallback: list[int | None]
    free: list[int]


def dollars(distance_km: float, channel: Channel) -> float:
    return channel.base_cost + channel.cost_per_km * distance_km


def eta_seconds(distance_km: float, ready_at: float | None, channel: Channel) -> float:
    """Courier arrives after its pickup latency, waits for the food, then rides pickup -> dropoff."""
    wait = max(ready_at or 0.0, channel.pickup_latency_min * 60.0)
    return wait + distance_km / channel.speed_kmh * 3600.0


def score(distance_km: float, ready_at: float | None, channel: Channel, weights: Weights) -> float:
    w = weights.normalized()
    fill = (channel.load + 1) / channel.capacity if channel.capacity else 1.0
    return (
        w.cost * dollars(distance_km, channel)
        + w.time * eta_seconds(distance_km, ready_at, channel) / 60.0
        + w.quality * 100.0 * (1.0 - channel.quality)
        + w.capacity * 100.0 * fill
    )


def fallback_points(ready_at: float | None, weights: Weights, fallback_penalty: float) -> float:
    return fallback_penalty + weights.normalized().time * max(ready_at or 0.0, 0.0) / 60.0


def scaled(points: float) -> int:
    return int(points * SCALE + 0.5)


class Terms(NamedTuple):
    """A channel's weighted constants: pair points = fixed + per_km * d + per_s * eta_seconds."""

    channel: int
    radius_km: float
    fixed: float
    per_km: float
    per_s: float
    s_per_km: float
    latency_s: float

    def eta(self, distance_km: float, ready_at: float | None) -> float:
        ready = ready_at or 0.0
        return (ready if ready > self.latency_s else self.latency_s) + distance_km * self.s_per_km

    def cost(self, distance_km: float, eta: float) -> int:
        return int((self.fixed + self.per_km * distance_km + self.per_s * eta) * SCALE + 0.5)


def channel_terms(channels: Sequence[Channel], weights: Weights) -> list[Terms]:
    """Terms of every channel, in order (`channel` = its position in `channels`)."""
    if len({c.id for c in channels}) != len(channels):
        raise ValueError("channel ids must be unique")
    w = weights.normalized()
    out = []
    for j, c in enumerate(channels):
        fill = (c.load + 1) / c.capacity if c.capacity else 1.0
        fixed = w.cost * c.base_cost + w.quality * 100.0 * (1.0 - c.quality) + w.capacity * 100.0 * fill
        per_km, s_per_km = w.cost * c.cost_per_km, 3600.0 / c.speed_kmh
        out.append(Terms(j, c.radius_km, fixed, per_km, w.time / 60.0, s_per_km, c.pickup_latency_min * 60.0))
    return out


def build_problem(
    orders: Sequence[Order], channels: Sequence[Channel], weights: Weights, fallback_penalty: float
) -> tuple[Problem, list[float]]:
    """The problem and each order's pickup -> dropoff distance. Pairs outside the channel's radius,
    on a full channel, or not cheaper than the fallback are left out (never strictly better)."""
    if fallback_penalty < 0:
        raise ValueError("fallback_penalty must be >= 0")
    terms = [t for t in channel_terms(channels, weights) if channels[t.channel].free > 0]
    wait_per_s = weights.normalized().time / 60.0
    options: list[list[tuple[int, int]]] = []
    fallback: list[int | None] = []
    distances: list[float] = []
    for order in orders:
        d = haversine_km(order.pickup, order.dropoff)
        ready = max(order.ready_at or 0.0, 0.0)
        penalty = int((fallback_penalty + wait_per_s * ready) * SCALE + 0.5)
        row = []
        # Unpacked flat loop: this is the hot part of building a model.
        for j, radius, fixed, per_km, per_s, s_per_km, latency in terms:
            if d <= radius:
                eta = (ready if ready > latency else latency) + d * s_per_km
                cost = int((fixed + per_km * d + per_s * eta) * SCALE + 0.5)
                if cost < penalty:
                    row.append((j, cost))
        options.append(row)
        fallback.append(penalty)
        distances.append(d)
    return Problem(options, fallback, [c.free for c in channels]), distances


def objective(problem: Problem, choice: Sequence[int]) -> int:
    total = 0
    for i, j in enumerate(choice):
        if j == FALLBACK:
            fallback = problem.fallback[i]
            if fallback is None:
                raise ValueError(f"order {i} may not fall back")
            total += fallback
        else:
            total += next(c for k, c in problem.options[i] if k == j)
    return total


def to_assignments(
    orders: Sequence[Order],
    channels: Sequence[Channel],
    distances: Sequence[float],
    choice: Sequence[int],
    fallback_penalty: float,
) -> tuple[Assignment, ...]:
    penalty = Decimal(f"{fallback_penalty:.2f}")
    out = []
    for order, d, j in zip(orders, distances, choice, strict=True):
        if j == FALLBACK:
            out.append(Assignment(order.order_id, None, penalty, None))
        else:
            c = channels[j]
            cost = Decimal(f"{dollars(d, c):.2f}")
            out.append(Assignment(order.order_id, c.id, cost, round(eta_seconds(d, order.ready_at, c))))
    return tuple(out)
