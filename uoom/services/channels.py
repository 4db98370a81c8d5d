"""Moving an order to a better channel, as the re-optimizer decides: the order's channel and an
`order.channel_reassigned` event (with the fee the move pays its old channel) in one transaction,
unless the move no longer applies: the order changed since the move was planned (picked up, or
moved by someone else), its courier reached the restaurant (the cut-off), or it shares a courier
with another order (a trip of two). A round of dispatch_policy in-time gives orders held without a
channel their first ones all at once (`assign_held`): the same event, from no channel, no fee."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from uoom.domain import events
from uoom.domain.orders import ChannelAssignment, Order
from uoom.stores.unit_of_work import UnitOfWork

REOPTIMIZED = "reoptimized"  # the order's assignmentSource after a move
IN_TIME = "in-time"  # ... after the optimizer assigned an order held without a channel (dispatch_policy in-time)


async def assign_held(placements: list[tuple[uuid.UUID, str, Decimal | None, int | None, float]], uow: UnitOfWork,
                      source: str = IN_TIME) -> list[Order]:  # fmt: skip
    """First channels for orders without one (order id, channel, cost, ETA from now, gain in points
    over the fallback): one statement for all and their `order.channel_reassigned` events (from
    null, no fee), in one transaction. An order that got a channel, a trip or a pickup meanwhile is
    left out; the assigned orders are returned."""
    if not placements:
        return []
    async with uow:
        assigned = await uow.assign_unassigned(
            [
                (order_id, ChannelAssignment(channel_id, cost, eta, source))
                for order_id, channel_id, cost, eta, _ in placements
            ]
        )
        gains = {order_id: gain for order_id, _, _, _, gain in placements}
        for order in assigned:
            details = {"from": None, "to": order.channel_id, "gain": gains[order.id], "fee": "0.00"}
            await uow.add_event(events.ORDER_CHANNEL_REASSIGNED, order, details)
        await uow.commit()
    return assigned


async def reassign_channel(order_id: uuid.UUID, from_channel_id: str | None, to_channel_id: str,
                           cost: Decimal | None, eta_from_now_s: int | None, gain: float, uow: UnitOfWork,
                           fee: Decimal = Decimal(0), now: datetime | None = None,
                           source: str = REOPTIMIZED) -> Order | None:  # fmt: skip
    """The moved order, or None when the move no longer applies (nothing written). `gain` is in
    objective points net of the fee; `fee` the dollars the move pays `from_channel_id`."""
    async with uow:
        order = await uow.lock_movable(order_id)
        if order is None or not order.movable_from(from_channel_id):
            return None
        # the order's ETA counts from its creation; the solver's from now
        since_created = int(((now or datetime.now(UTC)) - order.created_at).total_seconds())
        eta = None if eta_from_now_s is None else eta_from_now_s + since_created
        moved = await uow.set_channel(order_id, ChannelAssignment(to_channel_id, cost, eta, source))
        details = {"from": from_channel_id, "to": to_channel_id, "gain": gain, "fee": f"{fee:.2f}"}
        await uow.add_event(events.ORDER_CHANNEL_REASSIGNED, moved, details)
        await uow.commit()
    return moved
