"""The optimizer's batches form and join two-order trips: the micro-batcher with its trip planner
against real PostgreSQL (open trips, the channel registry) and Redis (live load), in a database of
its own. Trip rows are inserted as the order's transaction writes them (trips-contract)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import asyncpg
import pytest
import redis.asyncio as aioredis

from daemons.optimizer.batcher import Answer, MicroBatcher
from daemons.optimizer.trips import OpenTripsFeed, TripCounts, TripPlanner
from uoom import demo
from uoom.assignment import Delivery
from uoom.config import Settings
from uoom.live_channels import LiveChannels
from uoom.stores.open_trips import OPEN, QUERY, all_open_trips

RESTAURANT_ID, _, LAT, LON = demo.restaurants()[0]
OTHER_RESTAURANT_ID = demo.restaurants()[1][0]
BUNDLERS = {"own-bikes", "own-cars", "ebike-coop", "crowd-gig"}
READY_S = 900.0  # the demo restaurants' 15 minutes of preparation


class Optimizer:
    """The optimizer's batcher and open-trips feed wired as daemons/optimizer/app.py wires them, on a
    scratch database; the feed reads again before each ask (the daemon's reads it every 0.2 s)."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
        self.planned: list[TripCounts] = []
        live = LiveChannels(pool, redis)
        self.feed = OpenTripsFeed(partial(all_open_trips, pool))
        planner = TripPlanner(self.feed, settings.bundle_ready_within_s, settings.bundle_on_time_s,
                              self.planned.append, self.feed.answered)  # fmt: skip
        self.batcher = MicroBatcher(live.current, 30, settings.fallback_penalty, lambda r, n: None, trips=planner)

    async def __aenter__(self) -> Optimizer:
        self.batcher.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.batcher.stop()

    async def ask(self, *orders: tuple[str, float, float, uuid.UUID | None]) -> list[Answer]:
        """One request per order (id, drop-off lat, lon, restaurant), sent together: one batch."""
        requests = [
            ([Delivery(i, (LAT, LON), (lat, lon), 20.0, READY_S)], [str(r) if r else None]) for i, lat, lon, r in orders
        ]
        await self.feed.read()
        return await asyncio.gather(*(self.batcher.submit(d, 5000, r) for d, r in requests))


async def first_rider(pool: asyncpg.Pool, *, riders: int = 1, pickup_in_s: float = 600.0,
                      status: str = "CONFIRMED", channel: str = "own-bikes") -> tuple[str, str]:  # fmt: skip
    """An order alone in its trip, committed as create_order commits it: (trip id, order id)."""
    trip_id, order_id, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    await pool.execute(
        "INSERT INTO trips (id, channel_id, restaurant_id, riders, pickup_by) VALUES ($1, $2, $3, $4, $5)",
        trip_id, channel, RESTAURANT_ID, riders, now + timedelta(seconds=pickup_in_s),
    )  # fmt: skip
    await pool.execute(
        """INSERT INTO orders (id, customer_id, restaurant_id, status, items, delivery_location, total,
               channel_id, delivery_cost, eta_seconds, trip_id, created_at, updated_at)
           VALUES ($1, $2, $3, $4, '[]', $5, 20, $6, 3.66, 1164, $7, $8, $8)""",
        order_id, uuid.uuid4(), RESTAURANT_ID, status,
        {"latitude": LAT + 0.01, "longitude": LON, "street": "x", "city": "y", "postalCode": "z"},
        channel, trip_id, now,
    )  # fmt: skip
    return str(trip_id), str(order_id)


async def test_two_orders_of_one_restaurant_ready_together_share_a_fresh_trip(demo_world) -> None:
    settings, pool, redis = demo_world
    async with Optimizer(settings, pool, redis) as optimizer:
        a, b = await optimizer.ask(
            ("a", LAT + 0.010, LON, RESTAURANT_ID), ("b", LAT + 0.011, LON + 0.001, RESTAURANT_ID)
        )
    (one,), (two,) = a.assignments, b.assignments
    assert one.channel_id == two.channel_id and one.channel_id in BUNDLERS
    ride_a, ride_b = a.rides["a"], b.rides["b"]
    assert ride_a.trip_id == ride_b.trip_id and uuid.UUID(ride_a.trip_id)
    assert (ride_a.co_rider_id, ride_b.co_rider_id) == ("b", "a")
    assert ride_a.pickup_in_s == ride_b.pickup_in_s >= READY_S  # the courier waits for both
    assert optimizer.planned == [TripCounts(pairs=1)]


async def test_orders_of_two_restaurants_or_without_one_get_trips_of_their_own(demo_world) -> None:
    settings, pool, redis = demo_world
    async with Optimizer(settings, pool, redis) as optimizer:
        answers = await optimizer.ask(
            ("a", LAT + 0.010, LON, RESTAURANT_ID), ("b", LAT + 0.011, LON, OTHER_RESTAURANT_ID), ("c", LAT, LON, None)
        )
    rides = [next(iter(a.rides.values())) for a in answers if a.rides]
    assert all(a.assignments[0].channel_id in BUNDLERS for a in answers) and len(rides) == 3
    assert len({r.trip_id for r in rides}) == 3 and all(r.co_rider_id is None for r in rides)
    assert sum(c.singles for c in optimizer.planned) == len(rides) and sum(c.pairs for c in optimizer.planned) == 0


async def test_a_new_order_joins_the_open_trip_of_its_restaurant(demo_world) -> None:
    settings, pool, redis = demo_world
    trip_id, rider = await first_rider(pool)
    async with Optimizer(settings, pool, redis) as optimizer:
        (answer,) = await optimizer.ask(("new", LAT + 0.011, LON, RESTAURANT_ID))
    (placed,) = answer.assignments
    assert placed.channel_id == "own-bikes"
    ride = answer.rides["new"]
    assert (ride.trip_id, ride.co_rider_id) == (trip_id, rider)
    assert 0 < ride.pickup_in_s <= READY_S + 1
    assert optimizer.planned == [TripCounts(joins=1)]


@pytest.mark.parametrize(
    "trip",
    [
        {"pickup_in_s": -1.0},  # past its pickup_by
        {"riders": 2},  # full
        {"status": "CANCELLED"},  # its rider is gone
        {"status": "PICKED_UP"},
    ],
    ids=["past-pickup", "full", "cancelled", "picked-up"],
)
async def test_a_trip_that_may_not_be_joined_is_not(demo_world, trip: dict) -> None:
    settings, pool, redis = demo_world
    trip_id, _ = await first_rider(pool, **trip)
    async with Optimizer(settings, pool, redis) as optimizer:
        (answer,) = await optimizer.ask(("new", LAT + 0.011, LON, RESTAURANT_ID))
    ride = answer.rides["new"]  # alone on its bundling channel: a fresh trip others may join
    assert ride.trip_id != trip_id and ride.co_rider_id is None
    assert sum(c.joins for c in optimizer.planned) == 0


async def test_orders_on_channels_that_do_not_bundle_get_no_trip(demo_world) -> None:
    settings, pool, redis = demo_world
    await first_rider(pool)
    await pool.execute("UPDATE channels SET bundles = false")
    async with Optimizer(settings, pool, redis) as optimizer:
        a, b = await optimizer.ask(("a", LAT + 0.010, LON, RESTAURANT_ID), ("b", LAT + 0.011, LON, RESTAURANT_ID))
    assert (a.rides, b.rides) == ({}, {})
    assert a.assignments[0].channel_id is not None and optimizer.planned == []


async def test_the_feed_serves_open_trips_read_in_the_background(demo_world: tuple) -> None:
    """The optimizer's source of open trips: re-read off the request path, answered per restaurant;
    a trip that stops being joinable (its second rider) leaves it at the next read."""
    _, pool, _ = demo_world
    trip_id, order_id = await first_rider(pool)
    feed = OpenTripsFeed(partial(all_open_trips, pool), refresh_s=0.05)
    feed.start()
    try:
        for _ in range(100):
            if feed.read_at:
                break
            await asyncio.sleep(0.02)
        (row,) = feed([str(RESTAURANT_ID)])
        assert (row.trip_id, row.order_id) == (trip_id, order_id)
        assert feed([str(OTHER_RESTAURANT_ID)]) == []
        await pool.execute("UPDATE trips SET riders = 2 WHERE id = $1", uuid.UUID(trip_id))
        read = feed.read_at
        for _ in range(100):
            if feed.read_at > read:
                break
            await asyncio.sleep(0.02)
        assert feed([str(RESTAURANT_ID)]) == []
    finally:
        await feed.stop()


async def test_reading_the_open_trips_visits_the_open_ones_not_every_trip_and_order(demo_world) -> None:
    """Five reads a second: 3,000 past trips and their orders (picked up, or past their pickup)
    beside two open ones must not be scanned; the rows each step of the plan visits stay near
    the open trips' count."""
    _, pool, _ = demo_world
    await pool.execute(
        """WITH past AS (INSERT INTO trips (id, channel_id, restaurant_id, riders, pickup_by)
               SELECT gen_random_uuid(), 'own-bikes', $1, 1 + n % 2, now() - interval '1 hour'
               FROM generate_series(1, 3000) AS n RETURNING id)
           INSERT INTO orders (id, customer_id, restaurant_id, status, items, delivery_location, total, trip_id)
           SELECT gen_random_uuid(), gen_random_uuid(), $1, 'DELIVERED', '[]', '{}', 20, id FROM past""",
        RESTAURANT_ID,
    )  # fmt: skip
    open_ones = {await first_rider(pool) for _ in range(2)}
    await pool.execute("ANALYZE trips; ANALYZE orders")
    assert {(r.trip_id, r.order_id) for r in await all_open_trips(pool)} == open_ones
    (plan,) = await pool.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + QUERY, OPEN)

    def visited(node: dict) -> list[tuple[str, str | None, int]]:
        read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)  # a scan's filter reads rows too
        here = (node["Node Type"], node.get("Relation Name"), read * node["Actual Loops"])
        return [here] + [step for child in node.get("Plans", []) for step in visited(child)]

    steps = visited(plan["Plan"])
    assert all(rows <= 20 for _, table, rows in steps if table in ("trips", "orders")), steps
