"""The trips table: a courier's trip on a bundling channel, one or two orders of one restaurant,
one slot (docs/dispatch.md). A new order boards its trip inside its own transaction, before its
row is inserted (`orders.trip_id` references the trip).

Boarding is one upsert: a fresh id inserts the trip with its first rider; the id of a trip that
already exists adds a second rider only while it has one, its pickup is ahead and it is on the
same channel and restaurant. A join holds the first rider's row locked and refuses when that order
is no longer open (picked up, cancelled), moved off the trip or to another channel, or has a
co-rider already.
A refused join leaves no trace (the bump is undone) and the caller puts the order on a trip of
its own. Two creates of one new pair serialise on the trip's key: the second waits for the first
to commit, then joins it; only there is the first rider locked after its trip, under a savepoint,
so that a deadlock the database breaks costs the join and never the order.
"""

from __future__ import annotations

import uuid

import asyncpg

from uoom.domain.orders import Boarding, Order, TripPlan
from uoom.stores import orders

MAX_PICKUP_IN_S = 24 * 3600.0  # a planned pickup further ahead is the optimizer's mistake, not a plan
_JOIN_OR_OPEN = """ON CONFLICT (id) DO UPDATE SET riders = trips.riders + 1
    WHERE trips.riders = 1 AND trips.pickup_by > now() AND trips.channel_id = EXCLUDED.channel_id
      AND trips.restaurant_id = EXCLUDED.restaurant_id"""
_BOARD = f"""INSERT INTO trips (id, channel_id, restaurant_id, riders, pickup_by)
    VALUES ($1, $2, $3, 1, now() + make_interval(secs => $4))
    {_JOIN_OR_OPEN}
    RETURNING riders"""  # noqa: S608 - constant SQL; values are bind parameters
_BOARD_MANY = f"""INSERT INTO trips (id, channel_id, restaurant_id, riders, pickup_by)
    SELECT t.id, t.channel_id, t.restaurant_id, 1, now() + make_interval(secs => t.pickup_in_s)
    FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::float8[]) AS t(id, channel_id, restaurant_id, pickup_in_s)
    ORDER BY t.id
    {_JOIN_OR_OPEN}
    RETURNING id, riders"""  # noqa: S608 - constant SQL; values are bind parameters


async def board(conn: asyncpg.Connection, plan: TripPlan) -> Boarding | None:
    """Put a new order on `plan`'s trip, in the caller's transaction (its first statements: the
    transaction holds no lock yet); None, with nothing changed, when the trip does not take it."""
    pickup_in_s = _pickup_in_s(plan)
    # The first rider first, as every change of an order locks it before its trip (a
    # re-optimizer's move does): its changes wait for the join, or the join for them. A trip
    # planned for this order alone has none (should its id be taken after all, the late path
    # below locks the first rider).
    first = None if plan.alone else await orders.lock_first_rider(conn, plan.id)
    riders = await conn.fetchval(_BOARD, plan.id, plan.channel_id, plan.restaurant_id, pickup_in_s)
    if riders is None:  # full, past its pickup, or another channel or restaurant
        return None
    if riders == 1:
        return Boarding(plan.id, None)
    if first is None:  # a new pair's other create committed while this one waited on the trip's key
        first = await _late_first_rider(conn, plan)
    if first is None or not first.joinable_by(plan.channel_id):
        # refused: undo the bump (this transaction holds the trip's row since it made it)
        await conn.execute("UPDATE trips SET riders = riders - 1 WHERE id = $1", plan.id)
        return None
    return Boarding(plan.id, first)


async def board_many(conn: asyncpg.Connection, plans: list[TripPlan]) -> dict[uuid.UUID, Boarding]:
    """`board` for orders that exist already (an in-time round's joins), each on a different trip,
    in three statements whatever their number: the first riders locked, then the trips (the lock
    order of `board`), the refused joins undone. A trip that refuses, or whose first rider is no
    longer joinable, has no entry; nor has one whose first rider committed after the lock was
    tried (`board` locks it late, under a savepoint): its order waits for the next round."""
    if len({plan.id for plan in plans}) != len(plans):
        raise ValueError("board_many: one order per trip (board the others after these)")
    firsts = await orders.lock_first_riders(conn, [plan.id for plan in plans if not plan.alone])
    plans = [plan for plan in plans if (first := firsts.get(plan.id)) is None or first.joinable_by(plan.channel_id)]
    rows = await conn.fetch(
        _BOARD_MANY, [plan.id for plan in plans], [plan.channel_id for plan in plans],
        [plan.restaurant_id for plan in plans], [_pickup_in_s(plan) for plan in plans],
    )  # fmt: skip
    boarded: dict[uuid.UUID, Boarding] = {}
    late = []
    for row in rows:
        trip_id, first = row["id"], firsts.get(row["id"])
        if row["riders"] > 1 and first is None:
            late.append(trip_id)
        else:
            boarded[trip_id] = Boarding(trip_id, None if row["riders"] == 1 else first)
    if late:  # refused: undo the bumps (this transaction holds those trips' rows since it made them)
        await conn.execute("UPDATE trips SET riders = riders - 1 WHERE id = ANY($1::uuid[])", late)
    return boarded


async def open_fresh(conn: asyncpg.Connection, fresh: list[tuple[TripPlan, int]]) -> None:
    """Trips planned whole by one solve (a single, or a pair of orders that have no trip yet), with
    their riders, in one statement; in the caller's transaction, before its orders name them."""
    await conn.execute(
        """INSERT INTO trips (id, channel_id, restaurant_id, riders, pickup_by)
           SELECT t.id, t.channel_id, t.restaurant_id, t.riders, now() + make_interval(secs => t.pickup_in_s)
           FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::integer[], $5::float8[])
                AS t(id, channel_id, restaurant_id, riders, pickup_in_s)""",
        [plan.id for plan, _ in fresh], [plan.channel_id for plan, _ in fresh],
        [plan.restaurant_id for plan, _ in fresh], [riders for _, riders in fresh],
        [_pickup_in_s(plan) for plan, _ in fresh],
    )  # fmt: skip


async def _late_first_rider(conn: asyncpg.Connection, plan: TripPlan) -> Order | None:
    """The first rider, locked after the trip (the other order): a concurrent change of that
    order that then waits for the trip is a deadlock the database breaks. Under a savepoint, so
    that it costs the join (None) and not the order's transaction."""
    try:
        async with conn.transaction():
            return await orders.lock_first_rider(conn, plan.id)
    except (asyncpg.DeadlockDetectedError, asyncpg.LockNotAvailableError):
        return None


async def joined(conn: asyncpg.Connection, plan: TripPlan, first_rider: uuid.UUID, co_rider: uuid.UUID) -> Order:
    """After `board` took the join (the first rider locked): the first rider gets its co-rider and,
    when the plan gives them, its share of the trip and its delivery time in it; the trip's
    pickup becomes the later of its own and the joiner's plan. One statement, in the caller's
    transaction."""
    (first,) = await joined_many(conn, [(first_rider, co_rider, plan)])
    return first


async def joined_many(conn: asyncpg.Connection, joins: list[tuple[uuid.UUID, uuid.UUID, TripPlan]]) -> list[Order]:
    """`joined` for (first rider, co-rider, plan) of different trips, in one statement; in their order."""
    return await orders.set_co_riders(conn, [
        orders.CoRider(first_rider, co_rider, plan.id, _pickup_in_s(plan), plan.co_rider_cost,
                       None if plan.co_rider_eta_s is None else min(float(plan.co_rider_eta_s), MAX_PICKUP_IN_S))
        for first_rider, co_rider, plan in joins
    ])  # fmt: skip


def _pickup_in_s(plan: TripPlan) -> float:
    return min(max(plan.pickup_in_s, 0.0), MAX_PICKUP_IN_S)
