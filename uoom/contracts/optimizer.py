"""The optimizer service's contract: `POST /optimize` (DESIGN.md), one request, one response.

The API builds requests and reads responses with these models; the optimizer validates requests
and writes responses with them: the JSON names, the limits and the units live here only. Money
crosses the wire as a JSON number of dollars and is a `Decimal` in Python on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from uoom.assignment.model import Assignment, Delivery, Ride, Status
from uoom.contracts.numbers import JsonNumber, Real
from uoom.domain import columns

MAX_ORDERS = 500
MAX_DEADLINE_MS = 5000
MAX_READY_AT_S = 86400

# A JSON number on the wire, a Decimal in Python.
Dollars = Annotated[
    Decimal, PlainSerializer(float, return_type=float, when_used="json"), WithJsonSchema({"type": "number"})
]
RequestDollars = Annotated[Dollars, JsonNumber]  # what the optimizer accepts: a number, not "3" or true


class _Request(BaseModel):
    """What the optimizer accepts: no unknown field, so a typo is a 422 naming it."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True)


class _Response(BaseModel):
    """What the API reads: fields it does not know yet are ignored, so the optimizer can add some."""

    model_config = ConfigDict(extra="ignore", frozen=True, validate_by_name=True, serialize_by_alias=True)


class Point(_Request):
    latitude: Real = Field(ge=-90, le=90)
    longitude: Real = Field(ge=-180, le=180)

    @classmethod
    def of(cls, lat_lon: tuple[float, float]) -> Point:
        return cls(latitude=lat_lon[0], longitude=lat_lon[1])

    @property
    def lat_lon(self) -> tuple[float, float]:
        return self.latitude, self.longitude


class OptimizeOrder(_Request):
    order_id: str = Field(alias="orderId", min_length=1, max_length=100)
    pickup: Point
    dropoff: Point
    value: RequestDollars = Field(
        Decimal(0), ge=0, le=columns.ORDER_TOTAL.largest, description="the order's total, dollars",
        json_schema_extra={"minimum": 0, "maximum": float(columns.ORDER_TOTAL.largest), "default": 0},
    )  # fmt: skip
    ready_at: Real | None = Field(None, alias="readyAt", ge=0, le=MAX_READY_AT_S, description="seconds from now")
    restaurant_id: str | None = Field(
        None, alias="restaurantId", min_length=1, max_length=100,
        description="the pickup place: orders of one restaurant may share a courier on a bundling channel",
    )  # fmt: skip


class OptimizeRequest(_Request):
    orders: Annotated[list[OptimizeOrder], Field(min_length=1, max_length=MAX_ORDERS)]
    deadline_ms: Real | None = Field(None, alias="deadlineMs", gt=0, le=MAX_DEADLINE_MS)

    def deliveries(self) -> list[Delivery]:
        return [
            Delivery(o.order_id, o.pickup.lat_lon, o.dropoff.lat_lon, float(o.value), o.ready_at) for o in self.orders
        ]

    def restaurants(self) -> list[str | None]:
        """Each order's restaurant id, in order (None: not given, the order rides alone)."""
        return [o.restaurant_id for o in self.orders]


class OptimizedAssignment(_Response):
    """One order's channel; `channel_id` None is the explicit fallback, whose cost is the penalty.
    Bounded by the columns the API stores them in: an answer beyond them is not one to act on."""

    order_id: str = Field(alias="orderId")
    channel_id: str | None = Field(alias="channelId")
    cost: Dollars = Field(description="dollars, to the cent", ge=0, le=columns.DELIVERY_COST.largest)
    eta_seconds: int | None = Field(alias="etaSeconds", ge=0, le=columns.ETA_SECONDS.largest)
    trip_id: str | None = Field(None, alias="tripId", description="the courier's trip on a bundling channel (uuid)")
    co_rider_id: str | None = Field(None, alias="coRiderId", description="the order meant to share the trip")
    pickup_in_s: float | None = Field(
        None, alias="pickupInS", ge=0, description="seconds from now to the trip's planned pickup"
    )
    # the co-rider's share and delivery time in this trip: a join re-prices and re-times the open
    # trip's order (optional: an older optimizer leaves them out and the first rider keeps its own)
    co_rider_cost: Dollars | None = Field(
        None, alias="coRiderCost", ge=0, le=columns.DELIVERY_COST.largest,
        description="the co-rider's share of the trip, dollars, to the cent",
    )  # fmt: skip
    co_rider_eta_seconds: int | None = Field(
        None, alias="coRiderEtaSeconds", ge=0, le=columns.ETA_SECONDS.largest,
        description="seconds from now to the co-rider's delivery in this trip",
    )  # fmt: skip


class OptimizeResponse(_Response):
    assignments: list[OptimizedAssignment]
    status: Status
    solve_ms: float = Field(alias="solveMs", description="build + solve wall clock of the batch, ms")

    @classmethod
    def of(cls, assignments: Sequence[Assignment], status: Status, solve_ms: float,
           rides: Mapping[str, Ride] | None = None) -> OptimizeResponse:  # fmt: skip
        """`rides`: the trip of each order given one (by order id)."""
        rides = rides or {}
        rows = []
        for a in assignments:
            ride = rides.get(a.order_id)
            rows.append(OptimizedAssignment(
                order_id=a.order_id, channel_id=a.channel_id, cost=a.cost, eta_seconds=a.eta_seconds,
                trip_id=ride and ride.trip_id, co_rider_id=ride and ride.co_rider_id,
                pickup_in_s=ride and round(max(ride.pickup_in_s, 0.0), 3),
                co_rider_cost=None if ride is None else _cents(ride.co_rider_dollars),
                co_rider_eta_seconds=None if ride is None or ride.co_rider_deliver_s is None
                else round(max(ride.co_rider_deliver_s, 0.0)),
            ))  # fmt: skip
        return cls(assignments=rows, status=status, solve_ms=round(solve_ms, 3))

    def assignment_of(self, order_id: str) -> OptimizedAssignment | None:
        return next((a for a in self.assignments if a.order_id == order_id), None)


def _cents(amount: float | None) -> Decimal | None:
    return None if amount is None else Decimal(f"{max(amount, 0.0):.2f}")
