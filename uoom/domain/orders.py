"""The order: its states and legal transitions, its money (Decimal, cents), and the `Order` type
the use cases work on. Pure: no I/O, no JSON; the wire shape is made at the edge
(uoom/stores/snapshots.py)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from uuid import UUID, uuid4

from uoom.domain.errors import IllegalTransition, VersionConflict


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    PREPARING = "PREPARING"
    READY_FOR_PICKUP = "READY_FOR_PICKUP"
    PICKED_UP = "PICKED_UP"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.CONFIRMED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.PREPARING, S.CANCELLED}),
    S.PREPARING: frozenset({S.READY_FOR_PICKUP, S.CANCELLED}),
    S.READY_FOR_PICKUP: frozenset({S.PICKED_UP}),
    S.PICKED_UP: frozenset({S.DELIVERED, S.FAILED}),
    S.DELIVERED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}
# Orders whose channel may still change: assigned, not yet picked up.
OPEN_STATES = frozenset({S.PENDING, S.CONFIRMED, S.PREPARING, S.READY_FOR_PICKUP})
# Orders that no longer hold a channel slot.
FINISHED_STATES = frozenset({S.DELIVERED, S.CANCELLED, S.FAILED})


def check_transition(current: OrderStatus, wanted: OrderStatus) -> None:
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(current, wanted, sorted(TRANSITIONS[current]))


CENT = Decimal("0.01")


def cents(amount: Decimal | float) -> Decimal:
    """An amount from outside (a solver's float) in cents, converted once; half-even like round()."""
    return Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class LineItem:
    item_id: str
    name: str
    quantity: int
    unit_price: Decimal


def order_total(items: Iterable[LineItem]) -> Decimal:
    """Sum of quantity x unit price, in Decimal, rounded half-up to the cent."""
    total = sum((i.unit_price * i.quantity for i in items), Decimal(0))
    return total.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Address:
    street: str
    city: str
    postal_code: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Restaurant:
    id: UUID
    latitude: float
    longitude: float
    prep_minutes: int


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """What a customer asks for: the command behind a new order."""

    customer_id: UUID
    restaurant_id: UUID
    items: tuple[LineItem, ...]
    delivery_address: Address
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelAssignment:
    """Who delivers an order and at what cost; `eta_seconds` counts from the order's creation."""

    channel_id: str | None
    cost: Decimal | None
    eta_seconds: int | None
    source: str  # optimizer | ranking | greedy | default | none | held | reoptimized | in-time


@dataclass(frozen=True, slots=True)
class TripPlan:
    """The optimizer's trip for a new order on a bundling channel (docs/dispatch.md): a fresh
    trip (a new single, or both orders of a new pair), or an open trip to join before its pickup."""

    id: UUID
    channel_id: str
    restaurant_id: UUID
    pickup_in_s: float  # seconds from now to the trip's planned pickup
    # a join re-prices and re-times the first rider: its share (cents) and seconds from now to its
    # delivery in the trip (None: it keeps its own)
    co_rider_cost: Decimal | None = None
    co_rider_eta_s: int | None = None
    # a fresh trip for this order alone (no co-rider planned): nobody else rides it, so boarding
    # locks no first rider (one round trip less for most orders)
    alone: bool = False


def trip_plan_of(trip_id: str, channel_id: str, restaurant_id: UUID, pickup_in_s: float | None,
                 co_rider_cost: Decimal | float | None, co_rider_eta_s: float | None, *,
                 alone: bool) -> TripPlan:  # fmt: skip
    """A solver's trip as the stores take it. An id that is no uuid still gets the order a trip: a
    fresh one. A time or share that is negative, infinite or missing is dropped (pickup: now)."""
    try:
        trip = UUID(trip_id)
    except ValueError:
        trip = uuid4()
    share, deliver = _sane(co_rider_cost), _sane(co_rider_eta_s)
    return TripPlan(trip, channel_id, restaurant_id, float(_sane(pickup_in_s) or 0.0),
                    None if share is None else cents(share), None if deliver is None else int(deliver),
                    alone=alone)  # fmt: skip


def _sane(amount: Decimal | float | None) -> Decimal | float | None:
    return amount if amount is not None and math.isfinite(amount) and amount >= 0 else None


@dataclass(frozen=True, slots=True)
class Boarding:
    """Where a new order rides: its trip, and the first rider when it joined an open trip."""

    trip_id: UUID
    first_rider: Order | None  # None: the order is the trip's first rider


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order about to be stored: the request, its id and the channel chosen for it."""

    id: UUID
    request: PlaceOrder
    channel: ChannelAssignment
    estimated_delivery_time: datetime | None
    trip_id: UUID | None = None  # its trip on a bundling channel (boarded first: the row must exist)
    co_rider_id: UUID | None = None  # the first rider, when it joined an open trip

    @property
    def total(self) -> Decimal:
        return order_total(self.request.items)


@dataclass(frozen=True, slots=True)
class Order:
    """An order as stored. The store sets `version` (1, then +1 per change) and the timestamps."""

    id: UUID
    customer_id: UUID
    restaurant_id: UUID
    status: OrderStatus
    items: tuple[LineItem, ...]
    delivery_address: Address
    notes: str | None
    total: Decimal
    channel_id: str | None
    delivery_cost: Decimal | None
    eta_seconds: int | None
    estimated_delivery_time: datetime | None
    assignment_source: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    trip_id: UUID | None = None  # the courier's trip (a bundling channel); None: rides on its own
    co_rider_id: UUID | None = None  # the other order of a two-order trip

    def require_version(self, expected: int) -> None:
        """The optimistic-locking guard: a change is based on the version the caller saw."""
        if self.version != expected:
            raise VersionConflict(self.id, expected, self.version)

    def check_next(self, wanted: OrderStatus) -> None:
        check_transition(self.status, wanted)

    def movable_from(self, channel_id: str | None) -> bool:
        """Still open (not picked up) and still on `channel_id`: a move planned on it holds."""
        return self.status in OPEN_STATES and self.channel_id == channel_id

    def joinable_by(self, channel_id: str) -> bool:
        """As the first rider of an open trip: a new order on `channel_id` may share its courier."""
        return self.co_rider_id is None and self.movable_from(channel_id)
