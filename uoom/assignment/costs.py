"""Per (delivery, channel) cost, ETA and score, and the integer cost table every solver works on.

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
from decimal import Decimal
from time import perf_counter
from typing import NamedTuple

import numpy as np

from uoom.assignment.geo import haversine_km
from uoom.assignment.model import Assignment, Delivery, Result, Status
from uoom.domain.channels import Channel, Weights

SCALE = 1000
NO_CHANNEL = -1  # the choice of the explicit fallback: no channel
LARGE = 1 << 40  # "no such option" in integer cost matrices


class CostTable:
    """What the solvers see, integers only. `options[i]`: (channel index, cost) of the pairs worth
    considering for delivery i; `fallback[i]`: cost of the fallback, None when delivery i must get a
    channel; `free[j]`: slots left on channel j. `distances[i]`: km from pickup to dropoff of
    delivery i, for the answer (no solver reads them). `dense`: the same options as an n x m int64
    matrix, LARGE where a pair is left out. Give either: the other is made on first use (most
    solves read only the matrix, so build_cost_table gives the matrix alone)."""

    __slots__ = ("_dense", "_options", "distances", "fallback", "free")

    def __init__(
        self,
        options: list[list[tuple[int, int]]] | None,
        fallback: list[int | None],
        free: list[int],
        distances: list[float],
        dense: np.ndarray | None = None,
    ) -> None:
        if options is None and dense is None:
            raise ValueError("a cost table needs its options or its matrix")
        self._options, self.fallback, self.free, self.distances, self._dense = options, fallback, free, distances, dense

    @property
    def options(self) -> list[list[tuple[int, int]]]:
        if self._options is None:
            assert self._dense is not None
            self._options = [[(j, c) for j, c in enumerate(row) if c < LARGE] for row in self._dense.tolist()]
        return self._options

    @property
    def dense(self) -> np.ndarray:
        if self._dense is None:
            dense = np.full((len(self.options), len(self.free)), LARGE, dtype=np.int64)
            for i, row in enumerate(self.options):
                for j, c in row:
                    dense[i, j] = c
            self._dense = dense
        return self._dense


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


def build_cost_table(
    deliveries: Sequence[Delivery], channels: Sequence[Channel], weights: Weights, fallback_penalty: float
) -> CostTable:
    """Pairs outside the channel's radius, on a full channel, or not cheaper than the fallback are
    left out (never strictly better)."""
    distances = [haversine_km(d.pickup, d.dropoff) for d in deliveries]
    return cost_table(distances, [d.ready_at for d in deliveries], channels, weights, fallback_penalty)


def cost_table(
    distances: list[float],
    ready_at: Sequence[float | None],
    channels: Sequence[Channel],
    weights: Weights,
    fallback_penalty: float,
) -> CostTable:
    """build_cost_table from each order's pickup -> drop-off km and ready time (seconds from now).
    One numpy pass over orders x channels, with the same float operations in the same order as
    `Terms.cost`, so the integers are the same."""
    if fallback_penalty < 0:
        raise ValueError("fallback_penalty must be >= 0")
    terms = channel_terms(channels, weights)
    wait_per_s = weights.normalized().time / 60.0
    readies = [max(r or 0.0, 0.0) for r in ready_at]
    fallback: list[int | None] = [int((fallback_penalty + wait_per_s * r) * SCALE + 0.5) for r in readies]
    free = [c.free for c in channels]
    if not distances or not channels:
        return CostTable([[] for _ in distances], fallback, free, distances)
    d = np.array(distances)[:, None]
    ready = np.array(readies)[:, None]
    radius, fixed, per_km, per_s, s_per_km, latency = np.array([t[1:] for t in terms]).T
    eta = np.where(ready > latency, ready, latency) + d * s_per_km
    cost = ((fixed + per_km * d + per_s * eta) * SCALE + 0.5).astype(np.int64)
    ok = (d <= radius) & (cost < np.array(fallback, dtype=np.int64)[:, None]) & (np.array(free) > 0)
    return CostTable(None, fallback, free, distances, np.where(ok, cost, LARGE))


def objective(table: CostTable, choice: Sequence[int]) -> int:
    total = 0
    for i, j in enumerate(choice):
        if j == NO_CHANNEL:
            fallback = table.fallback[i]
            if fallback is None:
                raise ValueError(f"delivery {i} may not fall back")
            total += fallback
        else:
            total += next(c for k, c in table.options[i] if k == j)
    return total


def to_assignments(
    deliveries: Sequence[Delivery],
    channels: Sequence[Channel],
    distances: Sequence[float],
    choice: Sequence[int],
    fallback_penalty: float,
) -> tuple[Assignment, ...]:
    penalty = Decimal(f"{fallback_penalty:.2f}")
    out = []
    for delivery, d, j in zip(deliveries, distances, choice, strict=True):
        if j == NO_CHANNEL:
            out.append(Assignment(delivery.order_id, None, penalty, None))
        else:
            c = channels[j]
            cost = Decimal(f"{dollars(d, c):.2f}")
            out.append(Assignment(delivery.order_id, c.id, cost, round(eta_seconds(d, delivery.ready_at, c))))
    return tuple(out)


def to_result(
    table: CostTable,
    choice: Sequence[int],
    status: Status,
    started: float,
    deliveries: Sequence[Delivery],
    channels: Sequence[Channel],
    fallback_penalty: float,
) -> Result:
    """The answer of a solver that chose `choice` on `table`; `started` is its perf_counter() start."""
    assignments = to_assignments(deliveries, channels, table.distances, choice, fallback_penalty)
    return Result(assignments, status, (perf_counter() - started) * 1000, objective(table, choice))
