"""Two-order trips through the write side (PostgreSQL: trips row, both orders, both events in the
order's transaction), the relay and projector (Kafka, DynamoDB), the status cache, the optimizer's
load tracker (Redis) and the books: every service real, in a database and a topic of this test's own.

The assigner is the one port stood in for: which trip the optimizer picks is its business
(tests/unit/test_assignment_*, the optimizer's e2e tests); here it names the trip the write side
must honour or refuse."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from daemons.api.assign import Choice
from daemons.api.read_model import CachedReadModel
from daemons.optimizer.load_tracker import LoadTracker
from daemons.relay import Relay
from tests.integration.relay_support import db, read_topic, relay_dsn, relay_settings, running, topic, until
from uoom import channels, demo, rankings
from uoom.assignment.costs import dollars
from uoom.assignment.geo import haversine_km
from uoom.books import audit
from uoom.config import Settings
from uoom.domain import events
from uoom.domain.orders import Address, ChannelAssignment, LineItem, Order, OrderStatus, PlaceOrder, TripPlan
from uoom.services import orders as services
from uoom.stores import redis_keys
from uoom.stores.aws import dynamodb_client
from uoom.stores.readmodel import from_item
from uoom.stores.unit_of_work import PostgresUnitOfWork

__all__ = ["relay_dsn", "topic"]  # fixtures

RESTAURANT_ID, _, LAT, LON = demo.restaurants()[0]
OTHER_RESTAURANT_ID = demo.restaurants()[1][0]
DROPOFF = (LAT + 0.01, LON)
OPTIMIZER_COST = Decimal("1.50")  # the optimizer's price for a joining order: far under a single's


class OptimizerSays:
    """The optimizer's answer for the next order: the channel, and the trip it names."""

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.trip: uuid.UUID | None = None
        self.pickup_in_s = 600.0
        self.co_rider: tuple[Decimal, int] | None = None  # the co-rider's share and seconds to its delivery

    async def choose(self, order_id: str, pickup: tuple[float, float], dropoff: tuple[float, float],
                     value: Decimal, ready_in_s: float, restaurant_id: str | None = None) -> Choice:  # fmt: skip
        trip = None if self.trip is None else str(self.trip)
        share, deliver_s = self.co_rider or (None, None)
        return Choice(self.channel_id, OPTIMIZER_COST, 900, "optimizer", trip, None, self.pickup_in_s, share,
                      deliver_s)  # fmt: skip


@dataclass
class World:
    settings: Settings
    pool: asyncpg.Pool
    channel: str  # a bundling channel of this test's own (its Redis load is this test's alone)
    says: OptimizerSays
    reads: CachedReadModel
    created: list[uuid.UUID]

    async def place(self, trip: uuid.UUID | None, pickup_in_s: float = 600.0, restaurant_id: uuid.UUID = RESTAURANT_ID,
                    co_rider: tuple[Decimal, int] | None = None) -> Order:  # fmt: skip
        self.says.trip, self.says.pickup_in_s, self.says.co_rider = trip, pickup_in_s, co_rider
        cmd = PlaceOrder(uuid.uuid4(), restaurant_id, (LineItem("pad-thai", "Pad thai", 2, Decimal("9.50")),),
                         Address("Invalidenstr. 1", "Berlin", "10115", *DROPOFF), None)  # fmt: skip
        order = await services.create_order(cmd, PostgresUnitOfWork(self.pool), self.says, self.reads)
        self.created.append(order.id)
        return order

    async def move(self, order: Order, *statuses: OrderStatus) -> Order:
        for status in statuses:
            version = await self.pool.fetchval("SELECT version FROM orders WHERE id = $1", order.id)
            order = await services.change_status(order.id, status, version, None, PostgresUnitOfWork(self.pool),
                                                 self.reads)  # fmt: skip
        return order

    async def row(self, order_id: uuid.UUID) -> asyncpg.Record:
        return await self.pool.fetchrow(
            """SELECT trip_id, co_rider_id, version, delivery_cost, channel_id, eta_seconds, estimated_delivery_time,
                      created_at, updated_at FROM orders WHERE id = $1""",
            order_id,
        )

    async def pickup_by(self, trip: uuid.UUID) -> datetime | None:
        return await self.pool.fetchval("SELECT pickup_by FROM trips WHERE id = $1", trip)  # type: ignore[no-any-return]

    async def riders(self, trip: uuid.UUID) -> int | None:
        return await self.pool.fetchval("SELECT riders FROM trips WHERE id = $1", trip)  # type: ignore[no-any-return]

    async def events(self) -> list[tuple[str, uuid.UUID, int, dict[str, Any]]]:
        rows = await self.pool.fetch(
            "SELECT type, aggregate_id, aggregate_version, data FROM outbox_events ORDER BY position"
        )
        return [(r["type"], r["aggregate_id"], r["aggregate_version"], r["data"]) for r in rows]


@pytest.fixture
async def world(relay_dsn: str, topic: str, settings: Settings) -> AsyncIterator[World]:
    cfg = relay_settings(settings, relay_dsn, topic, relay_projector=True)
    channel = f"trips-{uuid.uuid4().hex[:8]}"
    created: list[uuid.UUID] = []
    async with db(relay_dsn) as pool, dynamodb_client(cfg) as ddb:
        async with pool.acquire() as conn:
            await demo.load(conn)
            await channels.add(conn, channel, {"name": "Bundling bikes", "kind": "own_fleet", "capacity": 10,
                                               "base_cost": 3.0, "cost_per_km": 0.6, "speed_kmh": 15,
                                               "pickup_latency_min": 6, "radius_km": 4, "quality": 0.95,
                                               "bundles": True})  # fmt: skip
        reads = CachedReadModel(cfg, pool, ddb, None, CollectorRegistry())
        yield World(cfg, pool, channel, OptimizerSays(channel), reads, created)
        await reads.close()
        for order in created:
            await ddb.delete_item(TableName=cfg.dynamodb_table, Key={"orderId": {"S": str(order)}})


def single_cost(channel: dict[str, Any]) -> Decimal:
    """What an order riding alone costs on the channel (uoom.assignment.costs.dollars)."""
    the_channel = channels.to_channel(channel)
    return Decimal(f"{dollars(haversine_km((LAT, LON), DROPOFF), the_channel):.2f}")


# --- the write side -----------------------------------------------------------------------------


async def test_a_second_order_joins_the_first_riders_trip_in_one_transaction_with_both_events(world: World) -> None:
    trip = uuid.uuid4()
    first = await world.place(trip)
    assert (first.trip_id, first.co_rider_id, first.version) == (trip, None, 1)
    assert await world.riders(trip) == 1
    second = await world.place(trip)
    assert (second.trip_id, second.co_rider_id, second.version) == (trip, first.id, 1)
    assert await world.riders(trip) == 2
    first_now = await world.row(first.id)
    assert (first_now["trip_id"], first_now["co_rider_id"], first_now["version"]) == (trip, second.id, 2)
    assert second.delivery_cost == OPTIMIZER_COST  # the optimizer's price for a joining order stands

    [(t1, a1, v1, _), (t2, a2, v2, _), (t3, a3, v3, joined)] = await world.events()
    assert [(t1, a1, v1), (t2, a2, v2), (t3, a3, v3)] == [
        (events.ORDER_CREATED, first.id, 1),
        (events.ORDER_CREATED, second.id, 1),
        (events.ORDER_TRIP_JOINED, first.id, 2),  # the first rider's own event, keyed by its id
    ]
    assert joined["tripId"] == str(trip) and joined["coRiderId"] == str(second.id)
    assert (joined["order"]["tripId"], joined["order"]["coRiderId"], joined["order"]["version"]) == (
        str(trip), str(second.id), 2)  # fmt: skip

    # the first rider's status read, right after the join's answer, shows its co-rider
    snapshot, _ = await world.reads.get(first.id)
    assert snapshot is not None and (snapshot["coRiderId"], snapshot["version"]) == (str(second.id), 2)


async def test_a_join_re_prices_and_re_times_the_first_rider_and_moves_the_trips_pickup(world: World) -> None:
    """The joiner's choice names the first rider's share and delivery time in the trip: they
    replace its single cost and ETA, and the trip's pickup moves to the joiner's later one, in the
    join's transaction; the first rider's trip_joined event carries them."""
    trip = uuid.uuid4()
    first = await world.place(trip, pickup_in_s=300.0)
    assert first.delivery_cost == OPTIMIZER_COST and first.eta_seconds == 900
    second = await world.place(trip, pickup_in_s=700.0, co_rider=(Decimal("1.15"), 1500))
    after = await world.row(first.id)
    joined_at = after["updated_at"]  # the join's transaction's now()
    assert (after["delivery_cost"], after["version"], after["co_rider_id"]) == (Decimal("1.15"), 2, second.id)
    assert after["estimated_delivery_time"] == joined_at + timedelta(seconds=1500)
    assert after["eta_seconds"] == round((joined_at - after["created_at"]).total_seconds() + 1500)
    assert await world.pickup_by(trip) == joined_at + timedelta(seconds=700)

    *_, (kind, order_id, version, data) = await world.events()
    assert (kind, order_id, version) == (events.ORDER_TRIP_JOINED, first.id, 2)
    assert (data["order"]["deliveryCost"], data["order"]["etaSeconds"]) == ("1.15", after["eta_seconds"])
    assert datetime.fromisoformat(data["order"]["estimatedDeliveryTime"]) == after["estimated_delivery_time"]
    snapshot, _ = await world.reads.get(first.id)  # written through: read right after the join's answer
    assert snapshot is not None and (snapshot["deliveryCost"], snapshot["version"]) == ("1.15", 2)


async def test_a_join_without_the_co_riders_share_keeps_its_cost_eta_and_an_earlier_pickup(world: World) -> None:
    """An optimizer older than coRiderCost/coRiderEtaSeconds: the first rider keeps its own; a
    joiner's earlier pickup never moves the trip's planned pickup forward."""
    trip = uuid.uuid4()
    first = await world.place(trip, pickup_in_s=600.0)
    before, pickup_before = await world.row(first.id), await world.pickup_by(trip)
    await world.place(trip, pickup_in_s=60.0)
    after = await world.row(first.id)
    assert after["version"] == 2 and await world.pickup_by(trip) == pickup_before
    keep = ("delivery_cost", "eta_seconds", "estimated_delivery_time")
    assert [after[k] for k in keep] == [before[k] for k in keep]


async def test_two_creates_of_a_new_pair_commit_one_after_the_other_and_the_second_joins(world: World) -> None:
    """The optimizer gives both orders of a new pair one fresh trip id: whichever inserts the trip
    first, the other waits on its key, then joins the committed first rider."""
    trip = uuid.uuid4()
    plan = TripPlan(trip, world.channel, RESTAURANT_ID, 600)
    async with PostgresUnitOfWork(world.pool) as holder:  # the first create, not committed yet
        assert await holder.board_trip(plan) is not None
        first_id = await _insert_rider(holder, trip)
        second = asyncio.create_task(world.place(trip))
        await until(lambda: _waiting_on_a_lock(world.pool), 10)
        assert not second.done()
        await holder.commit()
    joined = await second
    assert (joined.trip_id, joined.co_rider_id) == (trip, first_id)
    assert (await world.row(first_id))["co_rider_id"] == joined.id
    assert await world.riders(trip) == 2


async def test_a_join_waits_for_a_change_of_the_first_rider_in_flight_and_is_refused_if_it_cancelled(
    world: World,
) -> None:
    trip = uuid.uuid4()
    first = await world.place(trip)
    async with PostgresUnitOfWork(world.pool) as cancelling:  # a cancel of the first rider, not committed yet
        assert await cancelling.lock_order(first.id) is not None
        cancelled = await cancelling.set_status(first.id, OrderStatus.CANCELLED)
        await cancelling.add_event(events.ORDER_STATUS_CHANGED, cancelled)
        joining = asyncio.create_task(world.place(trip))
        await until(lambda: _waiting_on_a_lock(world.pool), 10)
        assert not joining.done()
        await cancelling.commit()
    alone = await joining
    assert alone.trip_id not in (None, trip) and alone.co_rider_id is None
    assert await world.riders(trip) == 1 and (await world.row(first.id))["co_rider_id"] is None


async def test_concurrent_creates_of_one_pair_all_land_on_one_trip(world: World) -> None:
    trip = uuid.uuid4()
    a, b = await asyncio.gather(world.place(trip), world.place(trip))
    assert {a.co_rider_id, b.co_rider_id} == {None, a.id} or {a.co_rider_id, b.co_rider_id} == {None, b.id}
    rows = [await world.row(o.id) for o in (a, b)]
    assert [r["co_rider_id"] for r in rows] == [b.id, a.id] and await world.riders(trip) == 2


REFUSALS = ["trip full", "past its pickup", "first rider cancelled", "first rider moved", "another restaurant"]


@pytest.mark.parametrize("why", REFUSALS)
async def test_a_refused_join_rides_alone_in_a_fresh_trip_at_its_single_cost(world: World, why: str) -> None:
    trip = uuid.uuid4()
    first = await world.place(trip, pickup_in_s=0.0 if why == "past its pickup" else 600.0)
    if why == "trip full":
        await world.place(trip)
    elif why == "first rider cancelled":
        await world.move(first, OrderStatus.CANCELLED)
    elif why == "first rider moved":  # as the re-optimizer's move writes it: off the trip, which closes
        async with PostgresUnitOfWork(world.pool) as uow:
            await uow.lock_order(first.id)
            await uow.set_channel(first.id, ChannelAssignment("own-cars", Decimal("5.00"), 900, "reoptimized"))
            await uow.commit()
    before, events_before = await world.riders(trip), await world.events()
    first_before, pickup_before = await world.row(first.id), await world.pickup_by(trip)
    alone = await world.place(trip, restaurant_id=OTHER_RESTAURANT_ID if why == "another restaurant" else RESTAURANT_ID,
                              pickup_in_s=1200.0, co_rider=(Decimal("0.10"), 3000))  # fmt: skip
    # a refused join changes nothing of the first rider nor of its trip
    assert await world.row(first.id) == first_before and await world.pickup_by(trip) == pickup_before

    stored = await world.row(alone.id)
    assert stored is not None, "the order is never lost"
    assert stored["trip_id"] not in (None, trip) and stored["co_rider_id"] is None
    assert await world.riders(stored["trip_id"]) == 1 and await world.riders(trip) == before  # nothing bumped
    assert stored["channel_id"] == world.channel
    channel = await channels.get(world.pool, world.channel)
    if why != "another restaurant":  # the same pickup and drop-off: the single cost of that ride
        assert stored["delivery_cost"] == single_cost(channel) != OPTIMIZER_COST
    # the order's own created event and nothing else: no rider was told of a join
    assert [(e[0], e[1]) for e in await world.events()] == [*[(e[0], e[1]) for e in events_before],
                                                          (events.ORDER_CREATED, alone.id)]  # fmt: skip


async def test_a_trip_id_the_optimizer_garbled_still_gets_the_order_a_trip_of_its_own(world: World) -> None:
    world.says.trip = None
    order = await world.place(None)
    assert order.trip_id is None  # no trip named: none made (fallback paths, other channels)
    plan = services.trip_plan(
        Choice(world.channel, OPTIMIZER_COST, 900, "optimizer", "not-a-uuid"),
        await PostgresUnitOfWork(world.pool).restaurant(RESTAURANT_ID),
    )  # type: ignore[arg-type]
    assert plan is not None and plan.pickup_in_s == 0.0
    async with PostgresUnitOfWork(world.pool) as uow:
        boarding = await uow.board_trip(plan)
    assert boarding is not None and boarding.first_rider is None


# --- the read side and the load -----------------------------------------------------------------


async def test_relay_projector_and_load_tracker_carry_the_trip_and_count_it_as_one_slot(world: World) -> None:
    trip = uuid.uuid4()
    first = await world.place(trip)
    second = await world.place(trip)
    alone = await world.place(None)  # a single order on the same channel: a slot of its own
    async with running(Relay(world.settings)):

        async def projected() -> dict[str, dict[str, Any]] | None:
            async with dynamodb_client(world.settings) as ddb:
                items = [(await ddb.get_item(TableName=world.settings.dynamodb_table,
                                             Key={"orderId": {"S": str(o.id)}})).get("Item")
                         for o in (first, second)]  # fmt: skip
            found = {s["id"]: s for s in (from_item(i) for i in items if i) if s}
            return found if [found.get(str(o.id), {}).get("version") for o in (first, second)] == [2, 1] else None

        await until(projected, 30, every=0.2)
        items = await projected()
    assert items is not None
    assert (items[str(first.id)]["tripId"], items[str(first.id)]["coRiderId"]) == (str(trip), str(second.id))
    assert (items[str(second.id)]["tripId"], items[str(second.id)]["coRiderId"]) == (str(trip), str(first.id))
    # the whole books: rows, items at PostgreSQL's versions, every event on Kafka in version order
    books = await audit(world.settings, [str(o.id) for o in (first, second, alone)], settle_s=20)
    assert books.ok and books.checked == ("postgres", "read model", "kafka"), books.lines()
    assert books.slots == {world.channel: 2}

    # the optimizer's load tracker, fed the topic as published: the pair holds one slot, the
    # single another; the slot is the trip's until its last rider is delivered
    published = [r.body for r in await read_topic(world.settings.kafka_bootstrap, world.settings.kafka_topic, 4)]
    redis = aioredis.from_url(world.settings.redis_url.get_secret_value())
    tracker = LoadTracker(world.settings, redis)
    try:

        async def load() -> int:
            return int(await redis.hget(redis_keys.CHANNEL_LOAD, world.channel) or 0)

        for body in published:
            await tracker.apply(orjson.dumps(body))
        assert await load() == 2
        for body in published:  # redelivered: nothing moves
            await tracker.apply(orjson.dumps(body))
        assert await load() == 2
        path = (OrderStatus.CONFIRMED, OrderStatus.PREPARING, OrderStatus.READY_FOR_PICKUP, OrderStatus.PICKED_UP,
                OrderStatus.DELIVERED)  # fmt: skip
        await _track(tracker, await world.move(first, *path))
        assert await load() == 2  # the second rider still rides: the courier is still out
        await _track(tracker, await world.move(second, OrderStatus.CANCELLED))
        assert await load() == 1
        await _track(tracker, await world.move(alone, OrderStatus.CANCELLED))
        assert await load() == 0
    finally:
        await redis.hdel(redis_keys.CHANNEL_LOAD, world.channel)
        for order in (first, second, alone):
            await redis.delete(redis_keys.order_load_version(str(order.id)))
        await redis.aclose()


async def test_move_load_gives_a_trip_one_slot_whatever_the_order_of_its_riders_events(settings: Settings,
                                                                                      stack: Any) -> None:  # fmt: skip
    redis = aioredis.from_url(settings.redis_url.get_secret_value())
    a, b = f"ch-{uuid.uuid4().hex[:8]}", f"ch-{uuid.uuid4().hex[:8]}"
    trip, first, second = (str(uuid.uuid4()) for _ in range(3))

    async def loads() -> tuple[int, int]:
        return tuple([int(await redis.hget(redis_keys.CHANNEL_LOAD, c) or 0) for c in (a, b)])  # type: ignore[return-value]

    try:
        assert await rankings.move_load(redis, first, a, 1, trip)
        assert await rankings.move_load(redis, second, a, 1, trip)  # joined: no second slot
        assert await loads() == (1, 0)
        assert not await rankings.move_load(redis, first, a, 2, trip)  # its trip_joined: nothing moves
        assert await rankings.move_load(redis, first, b, 3, trip)  # the trip moved, its first rider first
        assert await loads() == (1, 1)  # the second rider still holds the old courier
        assert await rankings.move_load(redis, second, b, 2, trip)
        assert await loads() == (0, 1)
        assert await rankings.move_load(redis, second, None, 3, trip)  # cancelled
        assert await loads() == (0, 1)
        assert await rankings.move_load(redis, first, None, 4, trip)  # delivered: the courier is free
        assert await loads() == (0, 0)
        assert not await redis.hexists(redis_keys.ORDER_TRIP, first)
    finally:
        await redis.hdel(redis_keys.CHANNEL_LOAD, a, b)
        for order in (first, second):
            await redis.delete(redis_keys.order_load_version(order))
        await redis.aclose()


# --- the books ----------------------------------------------------------------------------------


async def test_the_books_count_a_trip_as_one_slot_and_find_a_broken_trip(world: World) -> None:
    trip = uuid.uuid4()
    first, second = await world.place(trip), await world.place(trip)
    alone = await world.place(uuid.uuid4())
    ids = [str(o.id) for o in (first, second, alone)]
    books = await audit(world.settings, ids, kafka=False, read_model=False)
    assert books.ok and books.checked == ("postgres",)
    assert (books.broken_trips, books.slots) == ([], {world.channel: 2})
    assert books.as_json()["slots"] == {world.channel: 2}
    # only the first rider audited: its trip's books still read its co-rider
    assert (await audit(world.settings, ids[:1], kafka=False, read_model=False)).broken_trips == []

    await world.pool.execute("UPDATE orders SET co_rider_id = NULL WHERE id = $1", second.id)
    broken = await audit(world.settings, ids, kafka=False, read_model=False)
    assert not broken.holds and broken.broken_trips == sorted(ids[:2])
    assert any("on a trip that does not hold" in line for line in broken.lines())


# --- helpers ------------------------------------------------------------------------------------


async def _insert_rider(uow: PostgresUnitOfWork, trip: uuid.UUID) -> uuid.UUID:
    """A first rider's row inside `uow`'s open transaction, as create_order writes it."""
    order_id = uuid.uuid4()
    assert uow._conn is not None
    await uow._conn.execute(
        """INSERT INTO orders (id, customer_id, restaurant_id, items, delivery_location, total, channel_id,
               trip_id, assignment_source)
           SELECT $1, $2, restaurant_id, '[]', $3, 10, channel_id, id, 'optimizer' FROM trips WHERE id = $4""",
        order_id, uuid.uuid4(), {"street": "s", "city": "c", "postalCode": "p", "latitude": DROPOFF[0],
                                 "longitude": DROPOFF[1]}, trip,
    )  # fmt: skip
    return order_id


async def _waiting_on_a_lock(pool: asyncpg.Pool) -> bool:
    waiting = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return bool(waiting)


async def _track(tracker: LoadTracker, order: Order) -> None:
    """The order's last event, as the relay publishes it (the envelope's data carries the snapshot)."""
    from uoom.stores.snapshots import to_snapshot

    await tracker.apply(orjson.dumps({"data": {"order": to_snapshot(order)}}))
