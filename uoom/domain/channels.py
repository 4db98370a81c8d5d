"""Delivery channels and the criteria weights that rank them: plain values, no I/O and no solver,
so the channel registry and the CLI use them without loading OR-Tools.

Units: money in dollars, distances in km, speeds in km/h, latencies in minutes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Kind = Literal["own_fleet", "partner", "restaurant"]
KINDS: frozenset[str] = frozenset({"own_fleet", "partner", "restaurant"})
CRITERIA: tuple[str, ...] = ("cost", "time", "quality", "capacity")


@dataclass(frozen=True, slots=True)
class Channel:
    """A delivery channel, with `load` = its in-flight orders at the time of the solve; `bundles`:
    its couriers may carry two orders of one restaurant in a trip (docs/dispatch.md)."""

    id: str
    name: str
    kind: Kind
    capacity: int
    base_cost: float
    cost_per_km: float
    speed_kmh: float
    pickup_latency_min: float
    radius_km: float
    quality: float
    load: int = 0
    bundles: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"channel {self.id}: kind must be one of {sorted(KINDS)}")
        if self.capacity < 0 or self.load < 0:
            raise ValueError(f"channel {self.id}: capacity and load must be >= 0")
        if not self.speed_kmh > 0:
            raise ValueError(f"channel {self.id}: speed_kmh must be > 0")
        if min(self.base_cost, self.cost_per_km, self.pickup_latency_min, self.radius_km) < 0:
            raise ValueError(f"channel {self.id}: costs, latency and radius must be >= 0")
        if not 0.0 <= self.quality <= 1.0:
            raise ValueError(f"channel {self.id}: quality must be within 0..1")

    @property
    def free(self) -> int:
        return max(self.capacity - self.load, 0)


@dataclass(frozen=True, slots=True)
class Weights:
    """Criteria weights; use `normalized()` (sum 1) for a solve. Defaults: the synthetic day's."""

    cost: float = 0.5
    time: float = 0.3
    quality: float = 0.2
    capacity: float = 0.0

    def __post_init__(self) -> None:
        values = (self.cost, self.time, self.quality, self.capacity)
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError("weights must be finite numbers >= 0")
        if sum(values) <= 0:
            raise ValueError("at least one weight must be > 0")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> Weights:
        """Weights from e.g. {"cost": "0.4", "time": 0.3}: known criteria only, normalized."""
        unknown = sorted(set(raw) - set(CRITERIA))
        if unknown:
            raise ValueError(f"unknown criteria {unknown}; known: {', '.join(CRITERIA)}")
        values: dict[str, float] = {}
        for key, value in raw.items():
            try:
                values[key] = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ValueError(f"weight {key}={value!r} is not a number") from None
        merged = {k: values.get(k, 0.0) for k in CRITERIA}
        return cls(**merged).normalized()

    def normalized(self) -> Weights:
        total = self.cost + self.time + self.quality + self.capacity
        return Weights(self.cost / total, self.time / total, self.quality / total, self.capacity / total)
