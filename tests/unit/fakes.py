"""In-memory stand-ins for what the use cases talk to (no service): a unit of work with
commit/rollback, an assigner and a read model that record what they were asked."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any

from uoom.domain.channels import Channel
from uoom.domain.orders import Boarding, ChannelAssignment, NewOrder, Order, OrderStatus, Restaurant, TripPlan
from uoom.stores import orders
from uoom.stores.unit_of_work import IdempotencyKey, Remembered

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass
class Tables:
    orders: dict[uuid.UUID, Order] = field(default_factory=dict)
    events: list[tuple[str, Order, dict[str, Any]]] = field(default_factory=list)
    idempotency: dict[tuple[uuid.UUID, str], Remembered] = field(default_factory=dict)
    trips: dict[uuid.UUID, tuple[str, uuid.UUID, int]] = field(default_factory=dict)  # channel, restaurant, riders


class FakeUnitOfWork:
    """What is written inside `async with` is kept only if `commit()` was called, like the real one."""

    def __init__(self, restaurants: list[Restaurant] | None = None, channels: list[Channel] | None = None) -> None:
        self.restaurants = {r.id: r for r in restaurants or []}
        self.channels = {c.id: c for c in channels or []}
        self.tables = Tables()
        self.commits = 0
        self.rollbacks = 0
        self.twin: tuple[IdempotencyKey, Order] | None = None  # committed by a concurrent request
        self.unmovable: set[uuid.UUID] = set()  # what the store's cut-off / co-rider check refuses
        self._before: Tables | None = None
        self._committed = False
        self._answer: tuple[IdempotencyKey, Order] | None = None  # stored at commit

    async def __aenter__(self) -> FakeUnitOfWork:
        self._before, self._committed, self._answer = copy.deepcopy(self.tables), False, None
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if not self._committed:
            assert self._before is not None
            self.tables, self.rollbacks = self._before, self.rollbacks + 1

    async def commit(self) -> bool:
        """False, keeping nothing, when the answer to remember lost to a twin's (as the real one)."""
        if self._answer is not None:
            (key, order), self._answer = self._answer, None
            if not self._store_answer(key, order):
                return False
        self._committed, self.commits = True, self.commits + 1
        return True

    async def restaurant(self, restaurant_id: uuid.UUID) -> Restaurant | None:
        return self.restaurants.get(restaurant_id)

    async def remembered(self, key: IdempotencyKey) -> Remembered | None:
        return self.tables.idempotency.get((key.api_key_id, key.key))

    async def remember(self, key: IdempotencyKey, order: Order) -> None:
        self._answer = (key, order)

    def _store_answer(self, key: IdempotencyKey, order: Order) -> bool:
        if self.twin is not None:  # the twin's transaction commits while ours runs: it outlives our rollback
            (twin_key, twin_order), self.twin = self.twin, None
            assert self._before is not None
            slot = (twin_key.api_key_id, twin_key.key)
            self._before.idempotency[slot] = Remembered(twin_key.request_hash, twin_order)
            return False
        slot = (key.api_key_id, key.key)
        if slot in self.tables.idempotency:
            return False
        self.tables.idempotency[slot] = Remembered(key.request_hash, order)
        return True

    async def add_order(self, new: NewOrder) -> Order:
        order = orders.stored(new, NOW)  # the row the real one writes, created at the fake's NOW
        self.tables.orders[order.id] = order
        return order

    async def lock_order(self, order_id: uuid.UUID) -> Order | None:
        return self.tables.orders.get(order_id)

    async def lock_movable(self, order_id: uuid.UUID) -> Order | None:
        """As lock_order, but None for the orders in `unmovable` (past the cut-off, or riding with another)."""
        return None if order_id in self.unmovable else self.tables.orders.get(order_id)

    async def set_status(self, order_id: uuid.UUID, status: OrderStatus) -> Order:
        return self._change(order_id, status=status)

    async def set_channel(self, order_id: uuid.UUID, channel: ChannelAssignment) -> Order:
        created = self.tables.orders[order_id].created_at
        eta = channel.eta_seconds
        return self._change(order_id, channel_id=channel.channel_id, delivery_cost=channel.cost, eta_seconds=eta,
                            assignment_source=channel.source,
                            estimated_delivery_time=created + timedelta(seconds=eta or 0))  # fmt: skip

    async def assign_unassigned(self, placements: list[tuple[uuid.UUID, ChannelAssignment]],
                                seats: list[tuple[uuid.UUID | None, uuid.UUID | None]] | None = None,
                                ) -> list[Order]:  # fmt: skip
        """As the store: only orders still without a channel or a trip, and open; ETAs from now."""
        done = []
        for (order_id, a), (trip_id, co_rider_id) in zip(placements, seats or [(None, None)] * len(placements),
                                                         strict=True):  # fmt: skip
            order = self.tables.orders.get(order_id)
            if order is None or order.trip_id is not None or not order.movable_from(None):
                continue
            since = int((datetime.now(UTC) - order.created_at).total_seconds())
            eta = None if a.eta_seconds is None else a.eta_seconds + since
            done.append(self._change(order_id, channel_id=a.channel_id, delivery_cost=a.cost,
                                     assignment_source=a.source, eta_seconds=eta, trip_id=trip_id,
                                     co_rider_id=co_rider_id))  # fmt: skip
        return done

    async def board_trip(self, plan: TripPlan) -> Boarding | None:
        """Pure bookkeeping of the trips table's rule, without time: a second rider joins an open
        first one on the same channel and restaurant; a third is refused."""
        trip = self.tables.trips.get(plan.id)
        if trip is None:
            self.tables.trips[plan.id] = (plan.channel_id, plan.restaurant_id, 1)
            return Boarding(plan.id, None)
        channel_id, restaurant_id, riders = trip
        first = next((o for o in self.tables.orders.values() if o.trip_id == plan.id), None)
        if (riders != 1 or (channel_id, restaurant_id) != (plan.channel_id, plan.restaurant_id) or first is None
                or not first.joinable_by(plan.channel_id)):  # fmt: skip
            return None
        self.tables.trips[plan.id] = (channel_id, restaurant_id, 2)
        return Boarding(plan.id, first)

    async def open_trips(self, fresh: list[tuple[TripPlan, int]]) -> None:
        for plan, riders in fresh:
            self.tables.trips[plan.id] = (plan.channel_id, plan.restaurant_id, riders)

    async def lock_orders(self, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, Order]:
        return {i: self.tables.orders[i] for i in order_ids if i in self.tables.orders}

    async def board_trips(self, plans: list[TripPlan]) -> dict[uuid.UUID, Boarding]:
        """`board_trip` of each (the store refuses what the same rule refuses)."""
        boarded = {}
        for plan in plans:
            if (boarding := await self.board_trip(plan)) is not None:
                boarded[plan.id] = boarding
        return boarded

    async def set_co_riders(self, joins: list[tuple[uuid.UUID, uuid.UUID, TripPlan]]) -> list[Order]:
        return [await self.set_co_rider(first, co_rider, plan) for first, co_rider, plan in joins]

    async def set_co_rider(self, order_id: uuid.UUID, co_rider_id: uuid.UUID, plan: TripPlan) -> Order:
        """The first rider re-priced and re-timed as the trips store does (the fake's clock stands
        still at NOW, so its delivery time from now is its ETA from creation at NOW)."""
        changes: dict[str, Any] = {"co_rider_id": co_rider_id}
        if plan.co_rider_cost is not None:
            changes["delivery_cost"] = plan.co_rider_cost
        if plan.co_rider_eta_s is not None:
            created = self.tables.orders[order_id].created_at
            changes["eta_seconds"] = round((NOW - created).total_seconds() + plan.co_rider_eta_s)
            changes["estimated_delivery_time"] = NOW + timedelta(seconds=plan.co_rider_eta_s)
        return self._change(order_id, **changes)

    async def channel(self, channel_id: str) -> Channel | None:
        return self.channels.get(channel_id)

    def _change(self, order_id: uuid.UUID, **changes: Any) -> Order:
        order = self.tables.orders[order_id]
        changed = dataclasses.replace(order, **changes, version=order.version + 1, updated_at=NOW)
        self.tables.orders[order_id] = changed
        return changed

    async def add_event(self, event_type: str, order: Order, details: dict[str, Any] | None = None) -> None:
        self.tables.events.append((event_type, order, details or {}))


@dataclass(frozen=True)
class FakeChoice:
    channel_id: str | None
    cost: Decimal | float | None
    eta_seconds: int | None
    source: str
    trip_id: str | None = None
    co_rider_id: str | None = None
    pickup_in_s: float | None = None
    co_rider_cost: Decimal | float | None = None
    co_rider_eta_seconds: int | None = None


class FakeAssigner:
    def __init__(self, choice: FakeChoice) -> None:
        self.choice = choice
        self.asked: list[dict[str, Any]] = []

    async def choose(self, order_id: str, pickup: tuple[float, float], dropoff: tuple[float, float],
                     value: Decimal, ready_in_s: float, restaurant_id: str | None = None) -> FakeChoice:  # fmt: skip
        self.asked.append({"order_id": order_id, "pickup": pickup, "dropoff": dropoff, "value": value,
                           "ready_in_s": ready_in_s, "restaurant_id": restaurant_id})  # fmt: skip
        return self.choice


class FakeReadModel:
    def __init__(self) -> None:
        self.created_orders: list[Order] = []
        self.through: list[Order] = []
        self.aside: list[Order] = []

    def created(self, order: Order) -> None:
        self.created_orders.append(order)

    async def write_through(self, order: Order) -> bool:
        self.through.append(order)
        return True

    def changed_aside(self, order: Order) -> None:
        self.aside.append(order)
