"""Creating an order and moving it through its states.

Both write the order and its outbox event in one transaction (the unit of work), then tell the
read side: a new order goes into this worker's cache only (nothing older exists anywhere to be
confused with; the projector writes its item from the `order.created` event, and another worker
that misses reads PostgreSQL); a change is written through (before the answer), so that a read
after the answer sees it.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from uoom.assignment.costs import dollars, eta_seconds
from uoom.assignment.geo import haversine_km
from uoom.domain import events
from uoom.domain.errors import IdempotencyConflict, OrderNotFound, UnknownRestaurant
from uoom.domain.orders import (
    ChannelAssignment,
    NewOrder,
    Order,
    OrderStatus,
    PlaceOrder,
    Restaurant,
    TripPlan,
    cents,
    order_total,
    trip_plan_of,
)
from uoom.services.ports import Assigner, Choice, ReadModel, Stage, untimed
from uoom.stores.unit_of_work import IdempotencyKey, UnitOfWork


async def create_order(cmd: PlaceOrder, uow: UnitOfWork, assigner: Assigner, reads: ReadModel,
                       idempotency: IdempotencyKey | None = None, stage: Stage = untimed) -> Order:  # fmt: skip
    """Place an order on the channel the assigner picks (it never refuses one). With an
    idempotency key, a repeated request gets the first answer, whichever of two twins commits.
    On a bundling channel the optimizer may put it on a trip: see `_board`."""
    if idempotency and (earlier := await _replay(uow, idempotency)):
        return earlier
    restaurant = await uow.restaurant(cmd.restaurant_id)
    if restaurant is None:
        raise UnknownRestaurant(cmd.restaurant_id)
    order_id = uuid.uuid4()
    address = cmd.delivery_address
    ready_in_s = restaurant.prep_minutes * 60.0
    with stage("create.assign"):
        choice = await assigner.choose(
            str(order_id), (restaurant.latitude, restaurant.longitude), (address.latitude, address.longitude),
            order_total(cmd.items), ready_in_s, restaurant_id=str(restaurant.id),
        )  # fmt: skip
    eta = choice.eta_seconds
    channel = ChannelAssignment(choice.channel_id, None if choice.cost is None else cents(choice.cost), eta,
                                choice.source)  # fmt: skip
    new = NewOrder(order_id, cmd, channel, datetime.now(UTC) + timedelta(seconds=eta) if eta else None)
    plan = trip_plan(choice, restaurant)
    joined = None
    with stage("create.transaction"):
        async with uow:
            first_rider = None
            if plan is not None:
                new, first_rider = await _board(uow, new, plan, restaurant, ready_in_s)
            order = await uow.add_order(new)
            await uow.add_event(events.ORDER_CREATED, order)
            if plan is not None and first_rider is not None:  # the first rider learns its co-rider, in its own event
                joined = await uow.set_co_rider(first_rider.id, order.id, plan)
                await uow.add_event(events.ORDER_TRIP_JOINED, joined,
                                    {"tripId": str(order.trip_id), "coRiderId": str(order.id)})  # fmt: skip
            if idempotency is not None:
                await uow.remember(idempotency, order)
            stored = await uow.commit()
    if stored:
        reads.created(order)
        if joined is not None:
            reads.changed_aside(joined)
        return order
    # A concurrent twin with the same key committed first and ours rolled back: answer as it did.
    assert idempotency is not None
    replay = await _replay(uow, idempotency)
    assert replay is not None
    return replay


def trip_plan(choice: Choice, restaurant: Restaurant) -> TripPlan | None:
    """The optimizer's trip for the order, if it gave one (only the optimizer does, and only on a
    bundling channel). The co-rider's share and delivery time, when given, re-price and re-time the
    first rider of a join."""
    if not choice.trip_id or choice.channel_id is None:
        return None
    return trip_plan_of(choice.trip_id, choice.channel_id, restaurant.id, choice.pickup_in_s, choice.co_rider_cost,
                        choice.co_rider_eta_seconds, alone=choice.co_rider_id is None)  # fmt: skip


async def _board(uow: UnitOfWork, new: NewOrder, plan: TripPlan, restaurant: Restaurant,
                 ready_in_s: float) -> tuple[NewOrder, Order | None]:  # fmt: skip
    """Board the planned trip: as its first rider, or joining an open trip (then the first rider
    is returned, locked). A trip that does not take the order (full, past its pickup, its first
    rider gone) never costs the order: it rides alone in a fresh trip of its own on the same
    channel, at its single cost and ETA."""
    boarding = await uow.board_trip(plan)
    if boarding is not None:
        first = boarding.first_rider
        return replace(new, trip_id=boarding.trip_id, co_rider_id=None if first is None else first.id), first
    channel = await uow.channel(plan.channel_id)
    alone = new.channel
    pickup_in_s = plan.pickup_in_s
    if channel is not None:
        address = new.request.delivery_address
        distance = haversine_km((restaurant.latitude, restaurant.longitude), (address.latitude, address.longitude))
        eta = int(eta_seconds(distance, ready_in_s, channel))
        alone = replace(alone, cost=cents(dollars(distance, channel)), eta_seconds=eta)
        pickup_in_s = max(ready_in_s, channel.pickup_latency_min * 60.0)
        new = replace(new, estimated_delivery_time=datetime.now(UTC) + timedelta(seconds=eta))
    # a fresh id: the order is its first rider
    fresh = await uow.board_trip(replace(plan, id=uuid.uuid4(), pickup_in_s=pickup_in_s, alone=True))
    return replace(new, channel=alone, trip_id=None if fresh is None else fresh.trip_id), None


async def _replay(uow: UnitOfWork, key: IdempotencyKey) -> Order | None:
    earlier = await uow.remembered(key)
    if earlier is None:
        return None
    if earlier.request_hash != key.request_hash:
        raise IdempotencyConflict()
    return earlier.order


async def change_status(order_id: uuid.UUID, wanted: OrderStatus, expected_version: int, reason: str | None,
                        uow: UnitOfWork, reads: ReadModel) -> Order:  # fmt: skip
    """Move the order to `wanted` if the caller saw its current version and the move is legal."""
    async with uow:
        order = await uow.lock_order(order_id)  # serialises concurrent changes of one order
        if order is None:
            raise OrderNotFound(order_id)
        order.require_version(expected_version)
        order.check_next(wanted)
        changed = await uow.set_status(order_id, wanted)
        details = {"from": order.status.value, "to": wanted.value, "reason": reason}
        await uow.add_event(events.ORDER_STATUS_CHANGED, changed, details)
        await uow.commit()
    await reads.write_through(changed)
    return changed
