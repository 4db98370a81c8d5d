"""The in-time rounds form two-order trips among the orders the API held and join the open trips of
their restaurant, against real PostgreSQL and Redis (a database of its own): a part's fresh trips are
written together, a join boards its trip as a new order does, and a trip that no longer takes it leaves it
held, with nothing written."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal
from functools import partial

import asyncpg

from daemons.optimizer.reoptimizer import Reoptimizer
from daemons.optimizer.trips import OpenTripsFeed, TripCounts, TripPlanner
from tests.integration.test_optimizer_trips import BUNDLERS, RESTAURANT_ID, first_rider
from tests.integration.test_reoptimizer import MINUTE, _prep_s, held
from uoom.assignment.dispatch import ROUND_PART_ORDERS
from uoom.domain.orders import ChannelAssignment, TripPlan
from uoom.live_channels import LiveChannels
from uoom.services.channels import IN_TIME, board_held, open_held_trips
from uoom.stores.open_trips import all_open_trips
from uoom.stores.unit_of_work import PostgresUnitOfWork


async def rounds(demo_world, planned: list[TripCounts]) -> tuple[Reoptimizer, OpenTripsFeed]:
    """The optimizer's in-time rounds wired as daemons/optimizer/app.py wires them; the food of an
    order held 3 minutes ago is due (ready 1 minute inside the lead)."""
    settings, pool, redis = demo_world
    in_time = settings.model_copy(
        update={"dispatch_policy": "in-time", "dispatch_lead_seconds": await _prep_s(pool) - 2 * MINUTE}
    )
    feed = OpenTripsFeed(partial(all_open_trips, pool))
    planner = TripPlanner(feed, in_time.bundle_ready_within_s, in_time.bundle_on_time_s, planned.append,
                          feed.answered)  # fmt: skip
    return Reoptimizer(in_time, pool, LiveChannels(pool, redis), planner), feed


async def ride_of(pool: asyncpg.Pool, order_id: uuid.UUID) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT channel_id, trip_id, co_rider_id, assignment_source, delivery_cost, version FROM orders WHERE id = $1",
        order_id,
    )


async def events_of(pool: asyncpg.Pool, order_id: uuid.UUID) -> list[tuple[str, dict]]:
    rows = await pool.fetch("SELECT type, data FROM outbox_events WHERE aggregate_id = $1 ORDER BY position", order_id)
    return [(r["type"], r["data"]) for r in rows]


async def test_two_due_orders_of_one_restaurant_ride_one_trip(demo_world) -> None:
    _, pool, _ = demo_world
    planned: list[TripCounts] = []
    dispatcher, feed = await rounds(demo_world, planned)
    first, second = await held(pool, age_s=3 * MINUTE), await held(pool, age_s=3 * MINUTE)
    await feed.read()
    assert sorted(await dispatcher.release()) == sorted(map(str, (first, second)))
    a, b = await ride_of(pool, first), await ride_of(pool, second)
    assert a["channel_id"] == b["channel_id"] and a["channel_id"] in BUNDLERS
    assert a["trip_id"] == b["trip_id"] is not None
    assert (a["co_rider_id"], b["co_rider_id"]) == (second, first)
    assert {a["assignment_source"], b["assignment_source"]} == {IN_TIME}
    assert await pool.fetchval("SELECT riders FROM trips WHERE id = $1", a["trip_id"]) == 2
    assert planned == [TripCounts(pairs=1)]
    assert (dispatcher.released, dispatcher.released_shared, dispatcher.due_unplaced) == (2, 2, 0)
    # paired at once: each order's one event shows its channel, its trip and its co-rider
    for order_id, co_rider in ((first, second), (second, first)):
        ((kind, moved),) = await events_of(pool, order_id)
        assert (kind, moved["from"], moved["to"], moved["fee"]) == ("order.channel_reassigned", None, a["channel_id"],
                                                                    "0.00")  # fmt: skip
        assert (moved["order"]["tripId"], moved["order"]["coRiderId"]) == (str(a["trip_id"]), str(co_rider))


async def test_a_due_order_joins_the_open_trip_of_its_restaurant(demo_world) -> None:
    _, pool, _ = demo_world
    planned: list[TripCounts] = []
    dispatcher, feed = await rounds(demo_world, planned)
    trip_id, rider = await first_rider(pool)  # created now: ready 3 minutes after the held order
    due = await held(pool, age_s=3 * MINUTE)
    await feed.read()
    assert await dispatcher.release() == [str(due)]
    joined, first = await ride_of(pool, due), await ride_of(pool, uuid.UUID(rider))
    assert (str(joined["trip_id"]), str(joined["co_rider_id"]), joined["channel_id"]) == (trip_id, rider, "own-bikes")
    assert first["co_rider_id"] == due and first["version"] == 2
    assert first["delivery_cost"] != Decimal("3.66")  # re-priced to its share of the trip
    assert await pool.fetchval("SELECT riders FROM trips WHERE id = $1", uuid.UUID(trip_id)) == 2
    assert planned == [TripCounts(joins=1)] and dispatcher.released_shared == 1
    ((kind, data),) = await events_of(pool, uuid.UUID(rider))
    assert (kind, data["tripId"], data["coRiderId"]) == ("order.trip_joined", trip_id, str(due))


async def test_a_trip_that_no_longer_takes_the_order_leaves_it_held(demo_world) -> None:
    """Full since the round planned the join (or any refusal of the trips table): nothing written,
    not even the bump of the trip's riders; the next round places the order again."""
    _, pool, _ = demo_world
    trip_id, _ = await first_rider(pool, riders=2)
    due = await held(pool, age_s=3 * MINUTE)
    plan = TripPlan(uuid.UUID(trip_id), "own-bikes", RESTAURANT_ID, 600.0, Decimal("2.10"), 1200)
    channel = ChannelAssignment("own-bikes", Decimal("2.30"), 1300, IN_TIME)
    assert await board_held([(due, channel, plan)], PostgresUnitOfWork(pool)) == []
    assert (await ride_of(pool, due))["channel_id"] is None and await events_of(pool, due) == []
    assert await pool.fetchval("SELECT riders FROM trips WHERE id = $1", uuid.UUID(trip_id)) == 2
    # beside another that boards, in the same transaction: that one is written, this one not
    open_trip, rider = await first_rider(pool)
    other = await held(pool, age_s=3 * MINUTE)
    joins = TripPlan(uuid.UUID(open_trip), "own-bikes", RESTAURANT_ID, 600.0, Decimal("2.10"), 1200)
    ((boarded, first),) = await board_held([(due, channel, plan), (other, channel, joins)], PostgresUnitOfWork(pool))
    assert (boarded.id, boarded.trip_id, first is not None and str(first.id)) == (other, uuid.UUID(open_trip), rider)
    assert (await ride_of(pool, due))["channel_id"] is None and await events_of(pool, due) == []
    assert [kind for kind, _ in await events_of(pool, other)] == ["order.channel_reassigned"]


async def test_an_order_assigned_meanwhile_boards_no_trip(demo_world) -> None:
    _, pool, _ = demo_world
    due = await held(pool, age_s=3 * MINUTE)
    await pool.execute("UPDATE orders SET channel_id = 'own-cars', version = 2 WHERE id = $1", due)
    plan = TripPlan(uuid.uuid4(), "own-bikes", RESTAURANT_ID, 600.0, alone=True)
    channel = ChannelAssignment("own-bikes", Decimal("3.40"), 1300, IN_TIME)
    assert await board_held([(due, channel, plan)], PostgresUnitOfWork(pool)) == []
    assert (await ride_of(pool, due))["channel_id"] == "own-cars" and await events_of(pool, due) == []
    assert await pool.fetchval("SELECT count(*) FROM trips WHERE id = $1", plan.id) == 0


async def test_a_pair_one_of_which_was_assigned_meanwhile_opens_no_trip(demo_world) -> None:
    """The round's fresh trips go in one transaction; if any of their orders was taken since the
    round read it, nothing is written (no trip without its riders) and the round boards them one by
    one instead."""
    _, pool, _ = demo_world
    waiting, taken = await held(pool, age_s=3 * MINUTE), await held(pool, age_s=3 * MINUTE)
    await pool.execute("UPDATE orders SET channel_id = 'own-cars', version = 2 WHERE id = $1", taken)
    plan = TripPlan(uuid.uuid4(), "own-bikes", RESTAURANT_ID, 600.0)
    channel = ChannelAssignment("own-bikes", Decimal("2.10"), 1300, IN_TIME)
    pair = [(waiting, channel, plan, taken), (taken, channel, plan, waiting)]
    assert await open_held_trips(pair, PostgresUnitOfWork(pool)) is None
    assert (await ride_of(pool, waiting))["channel_id"] is None and await events_of(pool, waiting) == []
    assert await pool.fetchval("SELECT count(*) FROM trips WHERE id = $1", plan.id) == 0


async def test_many_joins_board_together_and_a_refused_one_changes_nothing(demo_world) -> None:
    """One transaction for a round's joins, whatever their number: each order on its trip, each
    first rider with its co-rider and its `order.trip_joined`; a trip whose first rider has a
    co-rider already takes nobody (its riders unchanged), and its order stays held."""
    _, pool, _ = demo_world
    trips = [await first_rider(pool) for _ in range(4)]
    taken_trip, taken_rider = trips[-1]
    await pool.execute("UPDATE orders SET co_rider_id = $1 WHERE id = $2", uuid.uuid4(), uuid.UUID(taken_rider))
    due = [await held(pool, age_s=3 * MINUTE) for _ in trips]
    plans = [TripPlan(uuid.UUID(trip_id), "own-bikes", RESTAURANT_ID, 600.0, Decimal("2.10"), 1200)
             for trip_id, _ in trips]  # fmt: skip
    channel = ChannelAssignment("own-bikes", Decimal("2.30"), 1300, IN_TIME)
    boarded = await board_held([(order, channel, plan) for order, plan in zip(due, plans, strict=True)],
                               PostgresUnitOfWork(pool))  # fmt: skip
    assert [(o.id, o.trip_id, first and str(first.id)) for o, first in boarded] == [
        (order, uuid.UUID(trip_id), rider) for order, (trip_id, rider) in zip(due[:3], trips[:3], strict=True)
    ]
    for order, (trip_id, rider) in zip(due[:3], trips[:3], strict=True):
        assert (await ride_of(pool, uuid.UUID(rider)))["co_rider_id"] == order
        assert await pool.fetchval("SELECT riders FROM trips WHERE id = $1", uuid.UUID(trip_id)) == 2
        ((kind, data),) = await events_of(pool, uuid.UUID(rider))
        assert (kind, data["tripId"], data["coRiderId"]) == ("order.trip_joined", trip_id, str(order))
    assert (await ride_of(pool, due[3]))["channel_id"] is None and await events_of(pool, due[3]) == []
    assert await pool.fetchval("SELECT riders FROM trips WHERE id = $1", uuid.UUID(taken_trip)) == 1


async def test_a_pair_boarded_one_by_one_rides_one_trip(demo_world) -> None:
    """When `open_held_trips` gives up, the round boards a new pair's orders in one call: the first
    opens the trip, its partner joins it after (a trip named twice takes its second order in a
    second pass)."""
    _, pool, _ = demo_world
    first, second = await held(pool, age_s=3 * MINUTE), await held(pool, age_s=3 * MINUTE)
    plan = TripPlan(uuid.uuid4(), "own-bikes", RESTAURANT_ID, 600.0, Decimal("2.10"), 1200)
    channel = ChannelAssignment("own-bikes", Decimal("2.30"), 1300, IN_TIME)
    (a, none), (b, joined) = await board_held([(first, channel, plan), (second, channel, plan)],
                                              PostgresUnitOfWork(pool))  # fmt: skip
    assert (a.id, a.trip_id, a.co_rider_id, none) == (first, plan.id, None, None)
    assert (b.id, b.trip_id, b.co_rider_id) == (second, plan.id, first)
    assert joined is not None and (joined.id, joined.co_rider_id) == (first, second)
    assert await pool.fetchval("SELECT riders FROM trips WHERE id = $1", plan.id) == 2
    assert [kind for kind, _ in await events_of(pool, first)] == ["order.channel_reassigned", "order.trip_joined"]


async def test_a_large_round_goes_out_in_parts_spread_over_the_interval(demo_world) -> None:
    """More due orders than a part holds: every one is placed, part after part (a later part may
    join the trips an earlier one opened), each part in transactions of its own, the parts spread
    out so that their events do not reach the relay at once."""
    _, pool, _ = demo_world
    planned: list[TripCounts] = []
    dispatcher, feed = await rounds(demo_world, planned)
    dispatcher.settings = dispatcher.settings.model_copy(update={"dispatch_release_interval": 1.0})
    due = [await held(pool, age_s=3 * MINUTE) for _ in range(2 * ROUND_PART_ORDERS + 5)]
    await feed.read()
    assert sorted(await dispatcher.release()) == sorted(map(str, due)) and dispatcher.released == len(due)
    assert len(planned) == 3  # one dispatch() per part
    # each event carries the time it was written (migration 0008): the parts' times stand apart
    times = await pool.fetch("SELECT DISTINCT created_at FROM outbox_events ORDER BY created_at")
    gap = timedelta(seconds=0.5 / 3 * 0.9)  # half the interval over three parts, less a margin
    starts = [times[0]] + [b for a, b in itertools.pairwise(times) if b["created_at"] - a["created_at"] >= gap]
    assert len(starts) >= 3, [t["created_at"] for t in times]
