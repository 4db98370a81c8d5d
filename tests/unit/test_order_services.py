"""The order use cases against fakes (tests/unit/fakes.py): no database, no optimizer, no read
model. What they must write together, what they refuse, and that money stays Decimal."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest

from tests.unit.fakes import NOW, FakeAssigner, FakeChoice, FakeReadModel, FakeUnitOfWork
from uoom.domain import events
from uoom.domain.errors import (
    IdempotencyConflict,
    IllegalTransition,
    OrderNotFound,
    UnknownRestaurant,
    VersionConflict,
)
from uoom.domain.orders import Address, LineItem, Order, OrderStatus, PlaceOrder, Restaurant
from uoom.services.channels import reassign_channel
from uoom.services.orders import change_status, create_order
from uoom.stores.snapshots import from_snapshot, to_snapshot
from uoom.stores.unit_of_work import IdempotencyKey

RESTAURANT = Restaurant(uuid.uuid4(), 52.52, 13.40, 15)
ADDRESS = Address("Invalidenstr. 1", "Berlin", "10115", 52.53, 13.38)
CHOICE = FakeChoice("own-fleet", Decimal("4.20"), 1500, "ranking")


def place(*items: LineItem, restaurant: uuid.UUID = RESTAURANT.id) -> PlaceOrder:
    return PlaceOrder(uuid.uuid4(), restaurant, items or (LineItem("pad-thai", "Pad thai", 3, Decimal("0.10")),),
                      ADDRESS, "ring twice")  # fmt: skip


def key(request_hash: str = "h1") -> IdempotencyKey:
    return IdempotencyKey(uuid.UUID(int=7), "key-1", request_hash)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork([RESTAURANT])


async def create(uow: FakeUnitOfWork, cmd: PlaceOrder | None = None, choice: FakeChoice = CHOICE,
                 idempotency: IdempotencyKey | None = None) -> tuple[Order, FakeAssigner, FakeReadModel]:  # fmt: skip
    assigner, reads = FakeAssigner(choice), FakeReadModel()
    order = await create_order(cmd or place(), uow, assigner, reads, idempotency)
    return order, assigner, reads


# --- create_order ---------------------------------------------------------------------------------


async def test_create_stores_the_order_and_its_created_event_together_then_writes_the_read_model_behind(
    uow: FakeUnitOfWork,
) -> None:
    order, assigner, reads = await create(uow)
    assert (order.status, order.version, order.channel_id, order.assignment_source) == (
        OrderStatus.PENDING, 1, "own-fleet", "ranking")  # fmt: skip
    assert uow.commits == 1 and uow.tables.orders == {order.id: order}
    assert uow.tables.events == [(events.ORDER_CREATED, order, {})]
    assert reads.created_orders == [order] and reads.through == []
    asked = assigner.asked[0]
    assert (asked["order_id"], asked["pickup"], asked["dropoff"]) == (str(order.id), (52.52, 13.40), (52.53, 13.38))
    assert asked["ready_in_s"] == 15 * 60.0


async def test_create_keeps_money_in_decimal_from_request_to_row(uow: FakeUnitOfWork) -> None:
    items = (LineItem("a", "A", 1, Decimal("0.1")), LineItem("b", "B", 1, Decimal("0.2")),
             LineItem("c", "C", 7, Decimal("19.99")))  # fmt: skip
    order, assigner, _ = await create(uow, place(*items), FakeChoice("own-fleet", 3.455, 900, "optimizer"))
    assert order.total == Decimal("140.23")  # floats would say 140.23000000000002
    assert assigner.asked[0]["value"] == Decimal("140.23") and isinstance(assigner.asked[0]["value"], Decimal)
    assert order.delivery_cost == Decimal("3.46") and isinstance(order.delivery_cost, Decimal)  # once, to cents
    exact, _, _ = await create(uow, choice=FakeChoice("own-fleet", Decimal("4.20"), 900, "optimizer"))
    assert exact.delivery_cost == Decimal("4.20")


async def test_create_without_a_channel_still_places_the_order(uow: FakeUnitOfWork) -> None:
    order, _, _ = await create(uow, choice=FakeChoice(None, None, None, "none"))
    assert (order.channel_id, order.delivery_cost, order.estimated_delivery_time) == (None, None, None)
    assert uow.commits == 1


async def test_create_for_an_unknown_restaurant_is_refused_and_writes_nothing(uow: FakeUnitOfWork) -> None:
    with pytest.raises(UnknownRestaurant):
        await create(uow, place(restaurant=uuid.uuid4()))
    assert uow.commits == 0 and uow.tables.orders == {} and uow.tables.events == []


async def test_a_repeated_idempotency_key_gets_the_first_answer_and_creates_nothing_more(
    uow: FakeUnitOfWork,
) -> None:
    cmd = place()
    first, _, _ = await create(uow, cmd, idempotency=key())
    again, assigner, reads = await create(uow, cmd, idempotency=key())
    assert again == first
    assert len(uow.tables.orders) == 1 and len(uow.tables.events) == 1
    assert assigner.asked == [] and reads.created_orders == []  # no assignment, no read-model write


async def test_an_idempotency_key_reused_with_another_body_is_a_conflict(uow: FakeUnitOfWork) -> None:
    await create(uow, idempotency=key("h1"))
    with pytest.raises(IdempotencyConflict):
        await create(uow, idempotency=key("h2"))
    assert len(uow.tables.orders) == 1


async def test_losing_the_race_to_a_twin_with_the_same_key_answers_as_the_twin_did_and_keeps_nothing(
    uow: FakeUnitOfWork,
) -> None:
    twin, _, _ = await create(FakeUnitOfWork([RESTAURANT]))
    uow.twin = (key(), twin)
    order, _, reads = await create(uow, idempotency=key())
    assert order == twin
    assert uow.commits == 0 and uow.tables.orders == {} and uow.tables.events == []  # ours rolled back
    assert reads.created_orders == []


# --- change_status --------------------------------------------------------------------------------


async def test_change_status_appends_the_event_with_from_to_and_reason_and_writes_through(
    uow: FakeUnitOfWork,
) -> None:
    order, _, _ = await create(uow)
    reads = FakeReadModel()
    changed = await change_status(order.id, OrderStatus.CONFIRMED, 1, "kitchen said yes", uow, reads)
    assert (changed.status, changed.version) == (OrderStatus.CONFIRMED, 2)
    details = {"from": "PENDING", "to": "CONFIRMED", "reason": "kitchen said yes"}
    assert uow.tables.events[-1] == (events.ORDER_STATUS_CHANGED, changed, details)
    assert reads.through == [changed]


async def test_change_status_of_an_unknown_order_is_not_found(uow: FakeUnitOfWork) -> None:
    with pytest.raises(OrderNotFound):
        await change_status(uuid.uuid4(), OrderStatus.CONFIRMED, 1, None, uow, FakeReadModel())


async def test_change_status_from_a_stale_version_names_the_current_one_and_writes_nothing(
    uow: FakeUnitOfWork,
) -> None:
    order, _, _ = await create(uow)
    await change_status(order.id, OrderStatus.CONFIRMED, 1, None, uow, FakeReadModel())
    with pytest.raises(VersionConflict) as refused:
        await change_status(order.id, OrderStatus.PREPARING, 1, None, uow, FakeReadModel())
    assert (refused.value.expected, refused.value.current) == (1, 2)
    assert len(uow.tables.events) == 2 and uow.tables.orders[order.id].status == OrderStatus.CONFIRMED


async def test_an_illegal_transition_names_the_allowed_next_states_and_writes_nothing(uow: FakeUnitOfWork) -> None:
    order, _, _ = await create(uow)
    reads = FakeReadModel()
    with pytest.raises(IllegalTransition) as refused:
        await change_status(order.id, OrderStatus.DELIVERED, 1, None, uow, reads)
    assert refused.value.allowed == [OrderStatus.CANCELLED, OrderStatus.CONFIRMED]
    assert "allowed next: CANCELLED, CONFIRMED" in str(refused.value)
    assert len(uow.tables.events) == 1 and reads.through == []


# --- reassign_channel -----------------------------------------------------------------------------


async def test_reassign_moves_the_channel_with_its_event_and_counts_the_eta_from_creation(
    uow: FakeUnitOfWork,
) -> None:
    order, _, _ = await create(uow)
    moved = await reassign_channel(order.id, "own-fleet", "partner-eco", Decimal("3.10"), 600, 1.5, uow,
                                   fee=Decimal("2.1"), now=NOW + timedelta(seconds=120))  # fmt: skip
    assert moved is not None
    assert (moved.channel_id, moved.delivery_cost, moved.eta_seconds, moved.assignment_source, moved.version) == (
        "partner-eco", Decimal("3.10"), 720, "reoptimized", 2)  # fmt: skip
    details = {"from": "own-fleet", "to": "partner-eco", "gain": 1.5, "fee": "2.10"}
    assert uow.tables.events[-1] == (events.ORDER_CHANNEL_REASSIGNED, moved, details)


@pytest.mark.parametrize("meanwhile", ["moved by someone else", "picked up", "gone", "past its cut-off"])
async def test_reassign_skips_an_order_that_changed_since_the_move_was_planned(
    uow: FakeUnitOfWork, meanwhile: str
) -> None:
    order, _, _ = await create(uow)
    if meanwhile == "moved by someone else":
        uow.tables.orders[order.id] = dataclasses.replace(order, channel_id="partner-premium")
    elif meanwhile == "picked up":
        uow.tables.orders[order.id] = dataclasses.replace(order, status=OrderStatus.PICKED_UP)
    elif meanwhile == "past its cut-off":  # or joined by a co-rider: the store's lock_movable refuses it
        uow.unmovable.add(order.id)
    else:
        del uow.tables.orders[order.id]
    before = copy_of(uow)
    assert await reassign_channel(order.id, "own-fleet", "partner-eco", Decimal("3.10"), 600, 1.5, uow) is None
    assert copy_of(uow) == before and uow.commits == 1  # only the create committed


def copy_of(uow: FakeUnitOfWork) -> tuple[object, ...]:
    return dict(uow.tables.orders), list(uow.tables.events)


# --- the snapshot: the one JSON shape of an order -------------------------------------------------


async def test_the_snapshot_has_the_shape_events_and_responses_always_had(uow: FakeUnitOfWork) -> None:
    order, _, _ = await create(uow)
    snapshot = to_snapshot(dataclasses.replace(order, id=uuid.UUID(int=1), customer_id=uuid.UUID(int=2),
                                               restaurant_id=uuid.UUID(int=3)))  # fmt: skip
    assert orjson.dumps(snapshot) == (
        b'{"id":"00000000-0000-0000-0000-000000000001","customerId":"00000000-0000-0000-0000-000000000002",'
        b'"restaurantId":"00000000-0000-0000-0000-000000000003","status":"PENDING",'
        b'"items":[{"name":"Pad thai","itemId":"pad-thai","quantity":3,"unitPrice":"0.10"}],'
        b'"deliveryAddress":{"city":"Berlin","street":"Invalidenstr. 1","latitude":52.53,"longitude":13.38,'
        b'"postalCode":"10115"},"notes":"ring twice","total":"0.30","channelId":"own-fleet",'
        b'"deliveryCost":"4.20","etaSeconds":1500,"estimatedDeliveryTime":'
        + orjson.dumps(snapshot["estimatedDeliveryTime"])
        + b',"assignmentSource":"ranking","createdAt":"2026-11-30T12:00:00.000000Z",'
        b'"updatedAt":"2026-11-30T12:00:00.000000Z","version":1,"tripId":null,"coRiderId":null}'
    )
    assert to_snapshot(from_snapshot(snapshot)) == snapshot
