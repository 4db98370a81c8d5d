"""Moving an order to a better channel, as the re-optimizer decides: the order's channel and an
`order.channel_reassigned` event (with the fee the move pays its old channel) in one transaction,
unless the move no longer applies: the order changed since the move was planned (picked up, or
moved by someone else), its courier reached the restaurant (the cut-off), or it shares a courier
with another order (a trip of two). A round of dispatch_policy in-time gives orders held without a
channel their first ones all at once (`assign_held`): the same event, from no channel, no fee; those
it puts on fresh trips of their own, singles or pairs, go together with their trips
(`open_held_trips`), and one joining an open trip boards it as a new order does (`board_held`)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from uoom.domain import events
from uoom.domain.orders import ChannelAssignment, Order, TripPlan
from uoom.stores.unit_of_work import UnitOfWork

REOPTIMIZED = "reoptimized"  # the order's assignmentSource after a move
IN_TIME = "in-time"  # ... after the optimizer assigned an order held without a channel (dispatch_policy in-time)


async def assign_held(placements: list[tuple[uuid.UUID, str, Decimal | None, int | None, float | None]],
                      uow: UnitOfWork,
                      source: str = IN_TIME) -> list[Order]:  # fmt: skip
    """First channels for orders without one (order id, channel, cost, ETA from now, gain in points
    over the fallback, None: not known): one statement for all and their `order.channel_reassigned`
    events (from null, no fee), in one transaction. An order that got a channel, a trip or a pickup meanwhile is
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
            await _first_channel_event(uow, order, gains[order.id])
        await uow.commit()
    return assigned


async def open_held_trips(riders: list[tuple[uuid.UUID, ChannelAssignment, TripPlan, uuid.UUID | None]],
                          uow: UnitOfWork) -> list[Order] | None:  # fmt: skip
    """Held orders on trips one solve planned whole (order, channel, trip, co-rider): singles, and
    pairs of two held orders (both name one trip and each other), in one transaction: the trips,
    the orders, their `order.channel_reassigned` events (each order's shows its trip and
    co-rider: a pair made at once has no `order.trip_joined`). None, with nothing written, if any
    of them got a channel, a trip or a pickup meanwhile: the caller boards them one by one."""
    if not riders:
        return []
    async with uow:
        on_trip = Counter(plan.id for _, _, plan, _ in riders)
        trips = {plan.id: plan for _, _, plan, _ in riders}
        await uow.open_trips([(plan, on_trip[trip_id]) for trip_id, plan in trips.items()])
        assigned = await uow.assign_unassigned([(order_id, channel) for order_id, channel, _, _ in riders],
                                               [(plan.id, co_rider) for _, _, plan, co_rider in riders])  # fmt: skip
        if len(assigned) != len(riders):
            return None  # rolled back: no trip without its riders
        for order in assigned:
            await _first_channel_event(uow, order)
        await uow.commit()
    return assigned


async def board_held(riders: list[tuple[uuid.UUID, ChannelAssignment, TripPlan]],
                     uow: UnitOfWork) -> list[tuple[Order, Order | None]]:  # fmt: skip
    """Held orders' first channels, each on its trip (order, channel, trip), as a new order boards
    one (services/orders.py `_board`): its first rider, or joining an open trip, whose first rider
    then learns its co-rider (and its share and delivery time) in an `order.trip_joined` event.
    All in one transaction, in a few statements whatever their number (a commit per order was a
    fifth of PostgreSQL's CPU at 100 orders/s, a join's five statements after it most of the
    rest): the orders locked, then their first riders and trips, as in `_board`. A trip named
    twice (a pair boarding after `open_held_trips` gave up: the first rider, then its partner)
    takes its second order in a second pass. An order that got a channel, a trip or a pickup
    meanwhile, or whose trip no longer takes it, is left as it is (held for the next round).
    (The order, the first rider or None) for each boarded, in the order given."""
    if not riders:
        return []
    boarded: dict[uuid.UUID, tuple[Order, Order | None]] = {}
    plans = {order_id: plan for order_id, _, plan in riders}
    async with uow:
        for batch in _one_per_trip(riders):
            locked = await uow.lock_orders([order_id for order_id, _, _ in batch])
            batch = [r for r in batch if (held := locked.get(r[0])) is not None and held.trip_id is None
                     and held.movable_from(None)]  # fmt: skip
            if not batch:
                continue
            boardings = await uow.board_trips([plan for _, _, plan in batch])  # a refusal leaves no trace
            seated = [(order_id, channel, boardings[plan.id]) for order_id, channel, plan in batch
                      if plan.id in boardings]  # fmt: skip
            seats: list[tuple[uuid.UUID | None, uuid.UUID | None]] = [
                (b.trip_id, None if b.first_rider is None else b.first_rider.id) for _, _, b in seated
            ]
            assigned = {o.id: o for o in await uow.assign_unassigned([(i, c) for i, c, _ in seated], seats)}
            if len(assigned) != len(seated):  # locked and checked above: a bug, not a race; roll the bumps back
                raise RuntimeError("board_held: a locked held order was not assigned")
            joins = [(b.first_rider.id, order_id, plans[order_id]) for order_id, _, b in seated
                     if b.first_rider is not None]  # fmt: skip
            rejoined = {first.id: first for first in await uow.set_co_riders(joins)}
            for order_id, _, boarding in seated:
                order = assigned[order_id]
                await _first_channel_event(uow, order)
                joined = None if boarding.first_rider is None else rejoined[boarding.first_rider.id]
                if joined is not None:
                    await uow.add_event(events.ORDER_TRIP_JOINED, joined,
                                        {"tripId": str(boarding.trip_id), "coRiderId": str(order_id)})  # fmt: skip
                boarded[order_id] = (order, joined)
        if boarded:
            await uow.commit()
    return [boarded[order_id] for order_id, _, _ in riders if order_id in boarded]


def _one_per_trip(riders: list[tuple[uuid.UUID, ChannelAssignment, TripPlan]],
                  ) -> list[list[tuple[uuid.UUID, ChannelAssignment, TripPlan]]]:  # fmt: skip
    """The riders in passes that name each trip once, keeping their order: a trip's second order
    boards after its first."""
    passes: list[list[tuple[uuid.UUID, ChannelAssignment, TripPlan]]] = []
    seen: Counter[uuid.UUID] = Counter()
    for rider in riders:
        n = seen[rider[2].id]
        seen[rider[2].id] += 1
        if n == len(passes):
            passes.append([])
        passes[n].append(rider)
    return passes


async def _first_channel_event(uow: UnitOfWork, order: Order, gain: float | None = None) -> None:
    """A held order's first channel: `order.channel_reassigned` from no channel, no fee (`gain` in
    points over the fallback, None where the solve gave none)."""
    await uow.add_event(events.ORDER_CHANNEL_REASSIGNED, order,
                        {"from": None, "to": order.channel_id, "gain": gain, "fee": "0.00"})  # fmt: skip


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
