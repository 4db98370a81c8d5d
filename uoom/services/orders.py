"""Creating an order and moving it through its states.

Both write the order and its outbox event in one transaction (the unit of work), then tell the
read side: a new order goes into this worker's cache only (nothing older exists anywhere to be
confused with; the projector writes its item from the `order.created` event, and another worker
that misses reads PostgreSQL); a change is written through (before the answer), so that a read
after the answer sees it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from uoom.domain import events
from uoom.domain.errors import IdempotencyConflict, OrderNotFound, UnknownRestaurant
from uoom.domain.orders import ChannelAssignment, NewOrder, Order, OrderStatus, PlaceOrder, cents, order_total
from uoom.services.ports import Assigner, ReadModel, Stage, untimed
from uoom.stores.unit_of_work import IdempotencyKey, UnitOfWork


async def create_order(cmd: PlaceOrder, uow: UnitOfWork, assigner: Assigner, reads: ReadModel,
                       idempotency: IdempotencyKey | None = None, stage: Stage = untimed) -> Order:  # fmt: skip
    """Place an order on the channel the assigner picks (it never refuses one). With an
    idempotency key, a repeated request gets the first answer, whichever of two twins commits."""
    if idempotency and (earlier := await _replay(uow, idempotency)):
        return earlier
    restaurant = await uow.restaurant(cmd.restaurant_id)
    if restaurant is None:
        raise UnknownRestaurant(cmd.restaurant_id)
    order_id = uuid.uuid4()
    address = cmd.delivery_address
    with stage("create.assign"):
        choice = await assigner.choose(
            str(order_id), (restaurant.latitude, restaurant.longitude), (address.latitude, address.longitude),
            order_total(cmd.items), restaurant.prep_minutes * 60.0,
        )  # fmt: skip
    eta = choice.eta_seconds
    channel = ChannelAssignment(choice.channel_id, None if choice.cost is None else cents(choice.cost), eta,
                                choice.source)  # fmt: skip
    new = NewOrder(order_id, cmd, channel, datetime.now(UTC) + timedelta(seconds=eta) if eta else None)
    with stage("create.transaction"):
        async with uow:
            order = await uow.add_order(new)
            await uow.add_event(events.ORDER_CREATED, order)
            if stored := idempotency is None or await uow.remember(idempotency, order):
                await uow.commit()
    if stored:
        reads.created(order)
        return order
    # A concurrent twin with the same key committed first and ours rolled back: answer as it did.
    assert idempotency is not None
    replay = await _replay(uow, idempotency)
    assert replay is not None
    return replay


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
