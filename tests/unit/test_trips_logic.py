"""The pure parts of trips: how the optimizer's answer becomes a plan, what the create use case
writes for a first rider, a join and a refused join (against the fakes of tests/unit/fakes.py),
and the books' reading of a trip's rows. The real store: tests/integration/test_trips.py."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.unit.fakes import NOW, FakeAssigner, FakeChoice, FakeReadModel, FakeUnitOfWork
from uoom.books import trip_books
from uoom.domain import events
from uoom.domain.channels import Channel
from uoom.domain.orders import Address, LineItem, Order, OrderStatus, PlaceOrder, Restaurant
from uoom.services.orders import create_order, trip_plan

RESTAURANT = Restaurant(uuid.uuid4(), 52.52, 13.40, 15)
ADDRESS = Address("Invalidenstr. 1", "Berlin", "10115", 52.53, 13.38)
BIKES = Channel("bikes", "Bikes", "own_fleet", 10, 3.0, 0.6, 15, 6, 4, 0.95, bundles=True)


def choice(trip: uuid.UUID | str | None, pickup_in_s: float | None = 600.0, **co_rider: Any) -> FakeChoice:
    return FakeChoice("bikes", Decimal("1.10"), 1200, "optimizer", None if trip is None else str(trip), None,
                      pickup_in_s, **co_rider)  # fmt: skip


async def place(uow: FakeUnitOfWork, trip: uuid.UUID | str | None, reads: FakeReadModel | None = None,
                **co_rider: Any) -> Order:  # fmt: skip
    cmd = PlaceOrder(uuid.uuid4(), RESTAURANT.id, (LineItem("a", "A", 1, Decimal("9.00")),), ADDRESS, None)
    return await create_order(cmd, uow, FakeAssigner(choice(trip, **co_rider)), reads or FakeReadModel())


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork([RESTAURANT], [BIKES])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (choice(None), None),
        (FakeChoice(None, None, None, "none", str(uuid.UUID(int=1))), None),  # no channel: no trip
        (choice(uuid.UUID(int=5)), (uuid.UUID(int=5), 600.0)),
        (choice(uuid.UUID(int=5), None), (uuid.UUID(int=5), 0.0)),
        (choice(uuid.UUID(int=5), float("nan")), (uuid.UUID(int=5), 0.0)),
    ],
)
def test_the_optimizers_answer_becomes_a_trip_plan(given: FakeChoice, expected: tuple[Any, float] | None) -> None:
    plan = trip_plan(given, RESTAURANT)
    assert (None if plan is None else (plan.id, plan.pickup_in_s)) == expected
    assert plan is None or (plan.channel_id, plan.restaurant_id) == ("bikes", RESTAURANT.id)
    assert plan is None or (plan.co_rider_cost, plan.co_rider_eta_s) == (None, None)  # an older optimizer's


@pytest.mark.parametrize(
    ("share", "eta", "expected"),
    [
        (2.155, 900, (Decimal("2.16"), 900)),  # money in cents, half-even as every solver's float
        (Decimal("2.15"), 0, (Decimal("2.15"), 0)),
        (float("nan"), -1, (None, None)),  # no answer to act on: the first rider keeps its own
        (-0.5, None, (None, None)),
    ],
)
def test_the_co_riders_share_and_time_go_into_the_plan(share: Any, eta: int | None, expected: tuple[Any, Any]) -> None:
    plan = trip_plan(choice(uuid.UUID(int=5), co_rider_cost=share, co_rider_eta_seconds=eta), RESTAURANT)
    assert plan is not None and (plan.co_rider_cost, plan.co_rider_eta_s) == expected


def test_a_trip_id_that_is_no_uuid_still_plans_a_fresh_trip() -> None:
    plan = trip_plan(choice("not-a-uuid"), RESTAURANT)
    assert plan is not None and isinstance(plan.id, uuid.UUID)


async def test_a_join_writes_the_first_riders_change_and_event_and_caches_it(uow: FakeUnitOfWork) -> None:
    trip = uuid.uuid4()
    first = await place(uow, trip)
    reads = FakeReadModel()
    second = await place(uow, trip, reads)
    joined = uow.tables.orders[first.id]
    assert (second.trip_id, second.co_rider_id, joined.co_rider_id, joined.version) == (trip, first.id, second.id, 2)
    assert [(t, o.id, o.version) for t, o, _ in uow.tables.events] == [
        (events.ORDER_CREATED, first.id, 1), (events.ORDER_CREATED, second.id, 1),
        (events.ORDER_TRIP_JOINED, first.id, 2)]  # fmt: skip
    assert uow.tables.events[-1][2] == {"tripId": str(trip), "coRiderId": str(second.id)}
    # the first rider's item is the projector's to write, from its event: no PutItem on the joiner's request
    assert (reads.created_orders, reads.through, reads.aside) == ([second], [], [joined])
    assert second.delivery_cost == Decimal("1.10")  # the optimizer's price stands
    assert (joined.delivery_cost, joined.eta_seconds) == (first.delivery_cost, first.eta_seconds)  # none given


async def test_a_join_re_prices_and_re_times_the_first_rider_in_its_event(uow: FakeUnitOfWork) -> None:
    trip = uuid.uuid4()
    first = await place(uow, trip)
    second = await place(uow, trip, co_rider_cost=Decimal("2.15"), co_rider_eta_seconds=1500)
    joined = uow.tables.orders[first.id]
    assert (joined.delivery_cost, joined.eta_seconds, joined.co_rider_id, joined.version) == (
        Decimal("2.15"), 1500, second.id, 2)  # fmt: skip
    assert joined.estimated_delivery_time == NOW + timedelta(seconds=1500)
    kind, evented, _ = uow.tables.events[-1]
    assert (kind, evented) == (events.ORDER_TRIP_JOINED, joined)  # its event's snapshot carries them


async def test_a_refused_join_leaves_the_first_rider_as_it_was(uow: FakeUnitOfWork) -> None:
    trip = uuid.uuid4()
    first = await place(uow, trip)
    await place(uow, trip)
    await place(uow, trip, co_rider_cost=Decimal("0.50"), co_rider_eta_seconds=60)  # a third: the trip is full
    assert uow.tables.orders[first.id].delivery_cost == first.delivery_cost == Decimal("1.10")
    assert uow.tables.orders[first.id].eta_seconds == first.eta_seconds and len(uow.tables.events) == 4


async def test_a_refused_join_rides_alone_at_its_single_cost_and_eta(uow: FakeUnitOfWork) -> None:
    trip = uuid.uuid4()
    first = await place(uow, trip)
    uow.tables.orders[first.id] = _with(uow.tables.orders[first.id], status=OrderStatus.PICKED_UP)
    alone = await place(uow, trip)
    assert alone.trip_id not in (None, trip) and alone.co_rider_id is None
    # 3.0 + 0.6 x 1.75 km; ETA = max(15 min ready, 6 min latency) + 1.75 km at 15 km/h
    assert alone.delivery_cost == Decimal("4.05") and alone.eta_seconds == 1320
    assert uow.tables.trips[alone.trip_id] == ("bikes", RESTAURANT.id, 1)  # type: ignore[index]
    assert [t for t, _, _ in uow.tables.events] == [events.ORDER_CREATED, events.ORDER_CREATED]


def _with(order: Order, **changes: Any) -> Order:
    import dataclasses

    return dataclasses.replace(order, **changes)


# --- the books' reading of trips -----------------------------------------------------------------


def rider(order: str, trip: str | None, co: str | None, riders: int = 2, channel: str = "bikes",
          status: str = "PENDING", restaurant: str = "r1") -> dict[str, Any]:  # fmt: skip
    return {"id": order, "status": status, "channel_id": channel, "restaurant_id": restaurant, "trip_id": trip,
            "co_rider_id": co, "riders": riders if trip else None,
            "trip_restaurant_id": "r1" if trip else None}  # fmt: skip


def test_a_pair_holds_one_slot_until_both_riders_are_done_and_a_single_one_of_its_own() -> None:
    rows = [rider("a", "t", "b"), rider("b", "t", "a"), rider("c", None, None), rider("d", "u", None, riders=1)]
    assert trip_books(rows, {"a", "b", "c", "d"}).slots == {"bikes": 3}
    rows[0]["status"] = "DELIVERED"
    assert trip_books(rows, {"a", "b", "c", "d"}).slots == {"bikes": 3}  # b still rides: the courier is out
    rows[1]["status"] = "CANCELLED"
    books = trip_books(rows, {"a", "b", "c", "d"})
    assert books.slots == {"bikes": 2} and books.broken == []


@pytest.mark.parametrize(
    "rows",
    [
        [rider("a", "t", "b"), rider("b", "t", None)],  # the co-riders do not point at each other
        [rider("a", "t", "b")],  # two riders counted, one order on the trip
        [rider("a", "t", "b"), rider("b", "t", "a", channel="cars")],  # two couriers for one trip
        [rider("a", "t", "b"), rider("b", "t", "a", restaurant="r2")],  # another restaurant
        [rider("a", "t", "b", riders=1)],  # alone with a co-rider
    ],
)
def test_a_trip_that_does_not_hold_names_its_audited_orders(rows: list[dict[str, Any]]) -> None:
    assert trip_books(rows, {"a"}).broken == ["a"]
