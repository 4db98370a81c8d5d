"""Plain values of the channel assignment model (channels and weights: uoom.domain.channels).

Units: money in dollars, distances in km, speeds in km/h, latencies in minutes, ETAs in seconds.
Time is relative to the moment of the solve: `Delivery.ready_at` is "seconds from now" (None or
<= 0: the food is ready now), so the model never needs a clock and stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Status = Literal["OPTIMAL", "FEASIBLE", "FALLBACK"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One order's trip to place on a channel; `pickup` and `dropoff` are (latitude, longitude)
    in degrees. `value` is the order's total, carried for the contract (no solver weighs it)."""

    order_id: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    value: float = 0.0
    ready_at: float | None = None  # seconds from now; None or <= 0 means ready now


@dataclass(frozen=True, slots=True)
class Assignment:
    """One delivery's answer; `channel_id` None is the explicit fallback (cost = the penalty)."""

    order_id: str
    channel_id: str | None
    cost: Decimal
    eta_seconds: int | None

    @property
    def fallback(self) -> bool:
        return self.channel_id is None


@dataclass(frozen=True, slots=True)
class Result:
    """A solve: one assignment per delivery, in input order; `objective` in integer milli-points."""

    assignments: tuple[Assignment, ...]
    status: Status
    solve_ms: float
    objective: int


@dataclass(frozen=True, slots=True)
class CurrentAssignment:
    """A delivery already on a channel, for re-optimization: that channel (None: in the fallback)
    and the ETA remaining on it in seconds (None: as if it were assigned now)."""

    delivery: Delivery
    channel_id: str | None
    eta_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Reassignment:
    """A move worth committing; `gain` in objective points, net of the fee and before the switching
    threshold; `fee` the dollars the move pays its old channel (0 out of the fallback)."""

    order_id: str
    from_channel_id: str | None
    to_channel_id: str
    cost: Decimal
    eta_seconds: int
    gain: float
    fee: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Ride:
    """An order's trip on a bundling channel (docs/dispatch.md): `trip_id` fresh for a new single or
    pair (both orders of a pair share it) or the open trip's for a join; `co_rider_id` the order meant
    to share the courier (None: alone so far); `pickup_in_s` seconds from now to the planned pickup;
    `co_rider_dollars` and `co_rider_deliver_s` (from now): the co-rider's share and delivery time in
    this trip (None: alone), which a join writes onto the open trip's order."""

    trip_id: str
    co_rider_id: str | None
    pickup_in_s: float
    co_rider_dollars: float | None = None
    co_rider_deliver_s: float | None = None
