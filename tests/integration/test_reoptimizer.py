"""Rolling re-optimization against real PostgreSQL and Redis, in a database of its own; and the
in-time policy's rounds, which give the orders the API held without a channel their channel once
the food is within the lead of ready, through the same use case, and move nothing else."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from daemons.api.assign import Assigner
from daemons.api.held_sweeper import HeldSweeper
from daemons.optimizer.reoptimizer import Reoptimizer
from uoom import demo
from uoom.config import Settings
from uoom.live_channels import LiveChannels
from uoom.services.channels import assign_held, reassign_channel
from uoom.stores.orders import UNASSIGNED_DUE, unassigned_due
from uoom.stores.unit_of_work import PostgresUnitOfWork

RESTAURANT_ID, _, LAT, LON = demo.restaurants()[0]


async def place(pool: asyncpg.Pool, channel: str, cost: str, eta_s: int, status: str = "CONFIRMED",
                age_s: float = 0.0, assigned_age_s: float | None = None,
                trip_id: uuid.UUID | None = None) -> uuid.UUID:  # fmt: skip
    """An order placed `age_s` ago on `channel` (assigned `assigned_age_s` ago: NULL, at creation)."""
    order_id = uuid.uuid4()
    now = datetime.now(UTC)
    created = now - timedelta(seconds=age_s)
    assigned = None if assigned_age_s is None else now - timedelta(seconds=assigned_age_s)
    await pool.execute(
        """INSERT INTO orders (id, customer_id, restaurant_id, status, items, delivery_location, total,
               estimated_delivery_time, channel_id, delivery_cost, eta_seconds, created_at, updated_at,
               assigned_at, trip_id)
           VALUES ($1, $2, $3, $4, '[]', $5, 20, $6, $7, $8, $9, $10, $10, $11, $12)""",
        order_id, uuid.uuid4(), RESTAURANT_ID, status,
        {"latitude": LAT + 0.01, "longitude": LON, "street": "x", "city": "y", "postalCode": "z"},
        created + timedelta(seconds=eta_s), channel, Decimal(cost), eta_s, created, assigned, trip_id,
    )  # fmt: skip
    return order_id


async def trip(pool: asyncpg.Pool, channel: str, riders: int, pickup_in_s: float) -> uuid.UUID:
    trip_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO trips (id, channel_id, restaurant_id, riders, pickup_by)
           VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))""",
        trip_id, channel, RESTAURANT_ID, riders, pickup_in_s,
    )  # fmt: skip
    return trip_id


def reoptimizer(settings: Settings, pool: asyncpg.Pool, redis: aioredis.Redis, **changes: object) -> Reoptimizer:
    return Reoptimizer(settings.model_copy(update=changes), pool, LiveChannels(pool, redis))


async def run_until(rounds: Reoptimizer, done: Callable[[], bool]) -> None:
    """Run the rounds as the daemon does until `done()`; stopped whatever happens."""
    rounds.start()
    try:
        while not done():
            await asyncio.sleep(0.05)
    finally:
        await rounds.stop()


async def channel_of(pool: asyncpg.Pool, order_id: uuid.UUID) -> str:
    return await pool.fetchval("SELECT channel_id FROM orders WHERE id = $1", order_id)  # type: ignore[no-any-return]


async def test_a_costly_assignment_is_moved_with_its_event_in_one_transaction(demo_world) -> None:
    settings, pool, redis = demo_world
    costly = await place(pool, "partner-premium", "9.11", 1500)
    reoptimizer = Reoptimizer(settings, pool, LiveChannels(pool, redis))
    moves = await reoptimizer.round()
    assert [m.order_id for m in moves] == [str(costly)]
    row = await pool.fetchrow("SELECT channel_id, version, assignment_source FROM orders WHERE id = $1", costly)
    assert row["channel_id"] != "partner-premium" and row["channel_id"] == moves[0].to_channel_id
    assert (row["version"], row["assignment_source"]) == (2, "reoptimized")
    event = await pool.fetchrow(
        "SELECT type, aggregate_version, data FROM outbox_events WHERE aggregate_id = $1", costly
    )
    assert (event["type"], event["aggregate_version"]) == ("order.channel_reassigned", 2)
    assert (event["data"]["from"], event["data"]["to"]) == ("partner-premium", row["channel_id"])
    assert event["data"]["order"]["channelId"] == row["channel_id"]
    # the move paid half of Partner Premium's $8 base cost, and gained more than that
    assert moves[0].fee == Decimal("4.00") and event["data"]["fee"] == "4.00" and moves[0].gain > 0
    assert reoptimizer.fees_paid == Decimal("4.00") and reoptimizer.reassigned == 1


async def test_nothing_moves_without_a_gain_above_the_threshold(demo_world) -> None:
    settings, pool, redis = demo_world
    first = Reoptimizer(settings, pool, LiveChannels(pool, redis))
    costly = await place(pool, "partner-premium", "9.11", 1500)
    await first.round()
    after_first = await pool.fetchval("SELECT count(*) FROM outbox_events")
    # The same orders again: already at their best, so no churn and no new event.
    assert await first.round() == []
    assert await pool.fetchval("SELECT count(*) FROM outbox_events") == after_first
    assert await pool.fetchval("SELECT version FROM orders WHERE id = $1", costly) == 2


async def test_picked_up_orders_are_never_moved(demo_world) -> None:
    settings, pool, redis = demo_world
    gone = await place(pool, "partner-premium", "9.11", 1500, status="PICKED_UP")
    assert await Reoptimizer(settings, pool, LiveChannels(pool, redis)).round() == []
    assert await pool.fetchval("SELECT channel_id FROM orders WHERE id = $1", gone) == "partner-premium"


async def test_a_move_worth_less_than_its_fee_is_not_made(demo_world) -> None:
    settings, pool, redis = demo_world
    costly = await place(pool, "partner-premium", "9.11", 1500)
    # The move above gains more than a $4 fee; a $40 fee (5 x the base cost) it does not.
    assert await reoptimizer(settings, pool, redis, reassign_fee_share=5.0).round() == []
    assert await channel_of(pool, costly) == "partner-premium"
    assert await pool.fetchval("SELECT count(*) FROM outbox_events") == 0


async def test_no_move_once_the_courier_reached_the_restaurant(demo_world) -> None:
    settings, pool, redis = demo_world
    # Partner Premium's courier reaches the restaurant 5 minutes after the assignment.
    # (ETAs count from creation: each has 25 minutes of its delivery to go, as the fresh one above)
    arrived = await place(pool, "partner-premium", "9.11", 1830, age_s=330)
    moved_back_then = await place(pool, "partner-premium", "9.11", 2400, age_s=900, assigned_age_s=310)
    on_the_way = await place(pool, "partner-premium", "9.11", 2400, age_s=900, assigned_age_s=240)
    moves = await reoptimizer(settings, pool, redis).round()
    assert [m.order_id for m in moves] == [str(on_the_way)]
    assert await channel_of(pool, arrived) == await channel_of(pool, moved_back_then) == "partner-premium"
    # and the move restarts the clock: the new courier's latency counts from now
    assert await pool.fetchval("SELECT now() - assigned_at < interval '1 minute' FROM orders WHERE id = $1", on_the_way)


async def test_the_cut_off_and_a_co_rider_are_checked_again_when_the_move_commits(demo_world) -> None:
    _, pool, _ = demo_world
    arrived = await place(pool, "partner-premium", "9.11", 1500, age_s=330)
    pair = await trip(pool, "partner-premium", 2, 600)
    riding = await place(pool, "partner-premium", "9.11", 1500, trip_id=pair)
    await pool.execute("UPDATE orders SET co_rider_id = $2 WHERE id = $1", riding, uuid.uuid4())
    for order_id in (arrived, riding):
        move = reassign_channel(order_id, "partner-premium", "own-cars", Decimal("5.00"), 900, 3.0,
                                PostgresUnitOfWork(pool), fee=Decimal("4.00"))  # fmt: skip
        assert await move is None
        assert await channel_of(pool, order_id) == "partner-premium"
    assert await pool.fetchval("SELECT count(*) FROM outbox_events") == 0


async def test_orders_sharing_a_courier_are_never_moved_and_a_lone_rider_leaves_its_trip(demo_world) -> None:
    settings, pool, redis = demo_world
    pair = await trip(pool, "partner-premium", 2, 600)
    first = await place(pool, "partner-premium", "9.11", 1500, trip_id=pair)
    second = await place(pool, "partner-premium", "9.11", 1500, trip_id=pair)
    await pool.execute("UPDATE orders SET co_rider_id = $2 WHERE id = $1", first, second)
    await pool.execute("UPDATE orders SET co_rider_id = $2 WHERE id = $1", second, first)
    picked_up_soon = await trip(pool, "partner-premium", 1, -1)  # its planned pickup has passed
    late = await place(pool, "partner-premium", "9.11", 1500, trip_id=picked_up_soon)
    single = await trip(pool, "partner-premium", 1, 600)
    alone = await place(pool, "partner-premium", "9.11", 1500, trip_id=single)
    moves = await reoptimizer(settings, pool, redis).round()
    assert [m.order_id for m in moves] == [str(alone)]
    for order_id in (first, second, late):
        assert await channel_of(pool, order_id) == "partner-premium"
    row = await pool.fetchrow("SELECT channel_id, trip_id FROM orders WHERE id = $1", alone)
    assert row["channel_id"] != "partner-premium" and row["trip_id"] is None
    # the trip it left is closed: nobody joins it any more
    assert await pool.fetchval("SELECT pickup_by <= now() FROM trips WHERE id = $1", single)


async def test_a_move_does_not_take_the_slot_the_next_order_would_have_used(demo_world) -> None:
    settings, pool, redis = demo_world
    costly = await place(pool, "partner-premium", "9.11", 1500)
    # One order arrived within the interval: one more is expected before the next round, so every
    # channel keeps one slot free. With one free slot elsewhere, the move would take it.
    await pool.execute("UPDATE channels SET capacity = 1 WHERE id <> 'partner-premium'")
    keeper = reoptimizer(settings, pool, redis)
    assert await keeper.round() == [] and keeper.last_reserve == 1
    assert await channel_of(pool, costly) == "partner-premium"
    await pool.execute("UPDATE channels SET capacity = 2 WHERE id <> 'partner-premium'")
    assert [m.order_id for m in await reoptimizer(settings, pool, redis).round()] == [str(costly)]


async def test_dispatch_at_once_runs_no_rounds_and_rolling_does(demo_world) -> None:
    settings, pool, redis = demo_world
    costly = await place(pool, "partner-premium", "9.11", 1500)
    at_once = reoptimizer(settings, pool, redis, dispatch_policy="at-once", dispatch_interval=0.01)
    await asyncio.wait_for(at_once.run(), 30)  # returns at once: there is no loop to run
    assert at_once.rounds == 0 and await channel_of(pool, costly) == "partner-premium"
    rolling = reoptimizer(settings, pool, redis, dispatch_policy="rolling", dispatch_interval=0.01)
    await run_until(rolling, lambda: rolling.reassigned > 0)
    assert await channel_of(pool, costly) != "partner-premium"


MINUTE = 60.0


async def held(pool: asyncpg.Pool, age_s: float, status: str = "CONFIRMED") -> uuid.UUID:
    """An order the API held `age_s` ago: no channel, no cost, no ETA."""
    order_id = uuid.uuid4()
    created = datetime.now(UTC) - timedelta(seconds=age_s)
    await pool.execute(
        """INSERT INTO orders (id, customer_id, restaurant_id, status, items, delivery_location, total,
               assignment_source, created_at, updated_at)
           VALUES ($1, $2, $3, $4, '[]', $5, 20, 'held', $6, $6)""",
        order_id, uuid.uuid4(), RESTAURANT_ID, status,
        {"latitude": 0.01 + await _latitude(pool), "longitude": await _longitude(pool), "street": "x", "city": "y",
         "postalCode": "z"}, created,
    )  # fmt: skip
    return order_id


async def _latitude(pool: asyncpg.Pool) -> float:
    return float(await pool.fetchval("SELECT latitude FROM restaurants WHERE id = $1", RESTAURANT_ID))


async def _longitude(pool: asyncpg.Pool) -> float:
    return float(await pool.fetchval("SELECT longitude FROM restaurants WHERE id = $1", RESTAURANT_ID))


async def _prep_s(pool: asyncpg.Pool) -> float:
    return float(await pool.fetchval("SELECT prep_minutes FROM restaurants WHERE id = $1", RESTAURANT_ID)) * 60


async def test_a_round_assigns_the_held_orders_due_and_leaves_the_others_held(demo_world) -> None:
    settings, pool, redis = demo_world
    lead = await _prep_s(pool) - 2 * MINUTE  # the food of an order placed now is ready 2 minutes past the lead
    due = await held(pool, age_s=3 * MINUTE)
    early = await held(pool, age_s=1 * MINUTE)
    picked_up = await held(pool, age_s=3 * MINUTE, status="PICKED_UP")
    dispatcher = reoptimizer(settings, pool, redis, dispatch_policy="in-time", dispatch_lead_seconds=lead)
    assert await dispatcher.release() == [str(due)] and dispatcher.released == 1
    assert dispatcher.due_unplaced == 0
    row = await pool.fetchrow(
        "SELECT channel_id, version, assignment_source, delivery_cost, assigned_at FROM orders WHERE id = $1", due
    )
    assert row["channel_id"] is not None and row["delivery_cost"] > 0
    assert (row["version"], row["assignment_source"]) == (2, "in-time")
    assert datetime.now(UTC) - row["assigned_at"] < timedelta(minutes=1)  # the courier's latency counts from now
    event = await pool.fetchrow("SELECT type, data FROM outbox_events WHERE aggregate_id = $1", due)
    assert event["type"] == "order.channel_reassigned"
    assert (event["data"]["from"], event["data"]["to"], event["data"]["fee"]) == (None, row["channel_id"], "0.00")
    assert event["data"]["order"]["channelId"] == row["channel_id"]
    for order_id in (early, picked_up):
        assert await channel_of(pool, order_id) is None
    # the next round: nothing more is due
    assert await dispatcher.release() == []


async def test_in_time_runs_release_rounds_and_moves_no_assigned_order(demo_world) -> None:
    settings, pool, redis = demo_world
    costly = await place(pool, "partner-premium", "9.11", 1500)  # rolling would move it (test_reoptimizer)
    due = await held(pool, age_s=await _prep_s(pool))  # ready now
    dispatcher = reoptimizer(settings, pool, redis, dispatch_policy="in-time", dispatch_release_interval=0.01)
    await run_until(dispatcher, lambda: dispatcher.released > 0)
    assert await channel_of(pool, due) is not None
    assert await channel_of(pool, costly) == "partner-premium" and dispatcher.reassigned == 0


async def test_the_api_assigns_held_orders_the_optimizer_left_past_due(demo_world) -> None:
    settings, pool, redis = demo_world
    lead = await _prep_s(pool) - 10 * MINUTE  # due 10 minutes after creation
    in_time = settings.model_copy(
        update={"dispatch_policy": "in-time", "dispatch_lead_seconds": lead, "default_channel_id": ""}
    )
    async with aiohttp.ClientSession() as http:  # the optimizer is never asked: it is the one missing
        sweeper = HeldSweeper(in_time, pool, Assigner(in_time, LiveChannels(pool, redis), http))
        overdue = await held(pool, age_s=10 * MINUTE + sweeper.late_s + 5)
        just_due = await held(pool, age_s=10 * MINUTE + 5)  # the optimizer's next round may still take it
        assert await sweeper.sweep() == 1 and sweeper.assigned == 1
    row = await pool.fetchrow("SELECT channel_id, assignment_source, version FROM orders WHERE id = $1", overdue)
    assert row["channel_id"] is not None and row["assignment_source"] in ("ranking", "greedy") and row["version"] == 2
    event = await pool.fetchrow("SELECT type, data FROM outbox_events WHERE aggregate_id = $1", overdue)
    assert event["type"] == "order.channel_reassigned" and event["data"]["from"] is None
    assert await channel_of(pool, just_due) is None


async def test_the_api_sweeps_nothing_under_the_other_policies(demo_world) -> None:
    settings, pool, redis = demo_world
    async with aiohttp.ClientSession() as http:
        sweeper = HeldSweeper(settings, pool, Assigner(settings, LiveChannels(pool, redis), http))
        await asyncio.wait_for(sweeper.run(), 5)  # rolling: returns at once
    assert sweeper.assigned == 0


async def test_a_rounds_placements_leave_out_an_order_assigned_meanwhile(demo_world) -> None:
    """One statement places a round's held orders; one the API's sweeper (or a pickup) got to first
    is left as it is, with no event."""
    _, pool, _ = demo_world
    waiting, taken = await held(pool, age_s=MINUTE), await held(pool, age_s=MINUTE)
    await pool.execute("UPDATE orders SET channel_id = 'own-cars', version = 2 WHERE id = $1", taken)
    placements = [(order_id, "own-bikes", Decimal("4.20"), 600, 10.0) for order_id in (waiting, taken)]
    assigned = await assign_held(placements, PostgresUnitOfWork(pool))
    assert [o.id for o in assigned] == [waiting]
    row = await pool.fetchrow(
        "SELECT channel_id, delivery_cost, eta_seconds, version FROM orders WHERE id = $1", waiting
    )
    assert (row["channel_id"], row["delivery_cost"], row["version"]) == ("own-bikes", Decimal("4.20"), 2)
    assert 600 + MINUTE - 2 <= row["eta_seconds"] <= 600 + MINUTE + 5  # from creation, not from now
    assert await channel_of(pool, taken) == "own-cars"
    kinds = await pool.fetch("SELECT aggregate_id, data FROM outbox_events")
    assert [(k["aggregate_id"], k["data"]["gain"]) for k in kinds] == [(waiting, 10.0)]


async def test_finding_the_held_orders_reads_them_not_every_open_order(demo_world) -> None:
    """Every round (and the API's sweeper) looks for the orders without a channel: 3,000 open,
    assigned orders beside two held ones must not be walked (orders_unassigned, migration 0007)."""
    _, pool, _ = demo_world
    await pool.execute(
        """INSERT INTO orders (id, customer_id, restaurant_id, status, items, delivery_location, total, channel_id)
           SELECT gen_random_uuid(), gen_random_uuid(), $1, 'CONFIRMED', '[]', '{}', 20, 'own-bikes'
           FROM generate_series(1, 3000)""",
        RESTAURANT_ID,
    )  # fmt: skip
    ready = await _prep_s(pool)
    waiting = {await held(pool, age_s=ready), await held(pool, age_s=ready)}
    await pool.execute("ANALYZE orders")
    assert {row["id"] for row in await unassigned_due(pool, 0.0, 0.0, 100)} == waiting
    (plan,) = await pool.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + UNASSIGNED_DUE, 0.0, 0.0, 100)

    def read(node: dict) -> list[tuple[str | None, int]]:
        rows = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        return [(node.get("Relation Name"), rows)] + [step for child in node.get("Plans", []) for step in read(child)]

    steps = read(plan["Plan"])
    assert all(rows <= 20 for table, rows in steps if table == "orders"), steps


async def test_a_placement_without_an_eta_stores_none_not_the_largest(demo_world) -> None:
    _, pool, _ = demo_world
    order_id = await held(pool, age_s=MINUTE)
    (assigned,) = await assign_held([(order_id, "own-bikes", None, None, 1.0)], PostgresUnitOfWork(pool))
    assert (assigned.eta_seconds, assigned.estimated_delivery_time, assigned.delivery_cost) == (None, None, None)


async def test_a_due_order_no_channel_can_take_stays_held_and_is_counted(demo_world) -> None:
    settings, pool, redis = demo_world
    due = await held(pool, age_s=await _prep_s(pool))
    await pool.execute("UPDATE channels SET enabled = false")  # nothing can take it
    dispatcher = reoptimizer(settings, pool, redis, dispatch_policy="in-time")
    assert await dispatcher.release() == []
    assert (dispatcher.due_unplaced, dispatcher.released) == (1, 0) and await channel_of(pool, due) is None
