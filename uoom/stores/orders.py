"""The orders table: `Order` values in and out. Every change bumps `version` and `updated_at` in
the same statement (`_CHANGED`), which is what the API's If-Match, the read model's newer-only
writes and the outbox's aggregate_version all rely on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeAlias

import asyncpg

from uoom.assignment import CurrentAssignment, Delivery
from uoom.domain import columns
from uoom.domain.orders import CENT, OPEN_STATES, ChannelAssignment, NewOrder, Order, OrderStatus
from uoom.stores.snapshots import address_from_json, address_json, items_from_json, items_json

COLUMNS = """id, customer_id, restaurant_id, status, items, delivery_location, total,
    estimated_delivery_time, created_at, updated_at, version, channel_id, delivery_cost,
    eta_seconds, assignment_source, notes, trip_id, co_rider_id"""
_CHANGED = "version = version + 1, updated_at = now()"
ETA_MAX = columns.ETA_SECONDS.largest
Seat: TypeAlias = tuple[uuid.UUID | None, uuid.UUID | None]  # an order's trip and its co-rider (None: none)
Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool


def from_row(row: asyncpg.Record | dict[str, Any]) -> Order:
    return Order(
        id=row["id"],
        customer_id=row["customer_id"],
        restaurant_id=row["restaurant_id"],
        status=OrderStatus(row["status"]),
        items=items_from_json(row["items"]),
        delivery_address=address_from_json(row["delivery_location"]),
        notes=row["notes"],
        total=row["total"],
        channel_id=row["channel_id"],
        delivery_cost=row["delivery_cost"],
        eta_seconds=row["eta_seconds"],
        estimated_delivery_time=row["estimated_delivery_time"],
        assignment_source=row["assignment_source"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        trip_id=row["trip_id"],
        co_rider_id=row["co_rider_id"],
    )


def stored(new: NewOrder, at: datetime) -> Order:
    """The row `new` becomes, created at `at`: built here rather than read back from the INSERT, so
    that its outbox event and idempotent answer go in the same statement (uoom/stores/unit_of_work.py)."""
    request, channel = new.request, new.channel
    return Order(
        id=new.id, customer_id=request.customer_id, restaurant_id=request.restaurant_id, status=OrderStatus.PENDING,
        items=tuple(request.items), delivery_address=request.delivery_address, notes=request.notes, total=new.total,
        channel_id=channel.channel_id, eta_seconds=channel.eta_seconds,
        delivery_cost=None if channel.cost is None else channel.cost.quantize(CENT, ROUND_HALF_UP),  # numeric(10,2)'s
        estimated_delivery_time=new.estimated_delivery_time, assignment_source=channel.source, created_at=at,
        updated_at=at, version=1, trip_id=new.trip_id, co_rider_id=new.co_rider_id,
    )  # fmt: skip


INSERT = """INSERT INTO orders (id, customer_id, restaurant_id, status, items, delivery_location, total,
    estimated_delivery_time, channel_id, delivery_cost, eta_seconds, assignment_source, notes, trip_id,
    co_rider_id, created_at, updated_at, version)"""
_TYPES = ("uuid", "uuid", "uuid", "order_status_enum", "jsonb", "jsonb", "numeric", "timestamptz", "text",
          "numeric", "integer", "text", "text", "uuid", "uuid", "timestamptz", "integer")  # fmt: skip


def insert_row(first: int) -> str:
    """INSERT's row as the parameters `insert_values()` gives, numbered from $first (typed: the
    row may be SELECTed, where PostgreSQL does not infer them); updated_at is created_at."""
    cells = [f"${first + i}::{kind}" for i, kind in enumerate(_TYPES)]
    return ", ".join([*cells[:16], cells[15], cells[16]])


def insert_values(order: Order) -> tuple[Any, ...]:
    return (order.id, order.customer_id, order.restaurant_id, order.status.value, items_json(order.items),
            address_json(order.delivery_address), order.total, order.estimated_delivery_time, order.channel_id,
            order.delivery_cost, order.eta_seconds, order.assignment_source, order.notes, order.trip_id,
            order.co_rider_id, order.created_at, order.version)  # fmt: skip


async def fetch(conn: Executor, order_id: uuid.UUID) -> Order | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM orders WHERE id = $1", order_id)
    return None if row is None else from_row(row)


async def fetch_many(conn: Executor, ids: list[uuid.UUID]) -> list[Order]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM orders WHERE id = ANY($1::uuid[])", ids)
    return [from_row(r) for r in rows]


async def for_customer(conn: Executor, customer_id: uuid.UUID, limit: int,
                       after: tuple[datetime, uuid.UUID] | None = None) -> list[Order]:  # fmt: skip
    """A customer's orders, newest change first, as the read model's CustomerStatusIndex lists them
    (ties by id): the page after `after` (the last listed order's updated_at and id)."""
    if after is None:
        rows = await conn.fetch(
            f"SELECT {COLUMNS} FROM orders WHERE customer_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2",
            customer_id, limit,
        )  # fmt: skip
    else:
        rows = await conn.fetch(
            f"""SELECT {COLUMNS} FROM orders WHERE customer_id = $1 AND (updated_at, id) < ($2, $3)
                ORDER BY updated_at DESC, id DESC LIMIT $4""",
            customer_id, after[0], after[1], limit,
        )  # fmt: skip
    return [from_row(r) for r in rows]


async def lock(conn: asyncpg.Connection, order_id: uuid.UUID) -> Order | None:
    """The order, locked until the transaction ends: concurrent changes of one order serialise."""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM orders WHERE id = $1 FOR UPDATE", order_id)
    return None if row is None else from_row(row)


# A re-optimizer may still move the order `o`: open, not sharing a courier (no co-rider, not in a
# trip of two), and before the cut-off, i.e. its courier has not reached the restaurant: now <
# assigned_at (NULL: created_at) + its channel's pickup latency, and now < its trip's planned pickup.
# An order without a channel (the fallback) has no courier to cut off. docs/dispatch.md.
OPEN_SQL = f"""o.status IN ({", ".join(sorted(f"'{s.value}'" for s in OPEN_STATES))})"""  # the orders_open index
MOVABLE = f"""{OPEN_SQL} AND o.co_rider_id IS NULL
    AND (o.channel_id IS NULL OR COALESCE(o.assigned_at, o.created_at) + interval '1 minute'
         * (SELECT c.pickup_latency_min FROM channels c WHERE c.id = o.channel_id)::float8 > now())
    AND (o.trip_id IS NULL OR EXISTS (SELECT 1 FROM trips t WHERE t.id = o.trip_id AND t.riders = 1
                                      AND t.pickup_by > now()))"""


async def lock_movable(conn: asyncpg.Connection, order_id: uuid.UUID) -> Order | None:
    """The order, locked, if a re-optimizer may still move it (`MOVABLE`, checked again on the row
    as it is once locked: a join or a pickup committed meanwhile wins); None otherwise."""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM orders o WHERE o.id = $1 AND {MOVABLE} FOR UPDATE OF o", order_id)
    return None if row is None else from_row(row)


async def lock_many(conn: asyncpg.Connection, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, Order]:
    """The orders that exist, locked as `lock` does, in the order of their ids (two lockers of
    several orders then wait for each other instead of deadlocking)."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM orders WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
                            order_ids)  # fmt: skip
    return {row["id"]: from_row(row) for row in rows}


_FIRST_RIDER = f"SELECT {COLUMNS} FROM orders WHERE trip_id = $1 ORDER BY created_at, id LIMIT 1 FOR UPDATE"


async def lock_first_rider(conn: asyncpg.Connection, trip_id: uuid.UUID) -> Order | None:
    """The trip's earliest order (the one a second order joins), locked as `lock` does."""
    row = await conn.fetchrow(_FIRST_RIDER, trip_id)
    return None if row is None else from_row(row)


async def lock_first_riders(conn: asyncpg.Connection, trip_ids: list[uuid.UUID]) -> dict[uuid.UUID, Order]:
    """`lock_first_rider` of each trip in one statement, in the order of the trips' ids; a trip
    without orders has no entry."""
    lateral = _FIRST_RIDER.replace("$1", "t.id")
    rows = await conn.fetch(
        f"""SELECT o.* FROM (SELECT DISTINCT id FROM unnest($1::uuid[]) AS u(id) ORDER BY id) AS t
            CROSS JOIN LATERAL ({lateral}) AS o""",
        trip_ids,
    )
    return {row["trip_id"]: from_row(row) for row in rows}


async def set_status(conn: asyncpg.Connection, order_id: uuid.UUID, status: OrderStatus) -> Order:
    row = await conn.fetchrow(
        f"UPDATE orders SET status = $2, {_CHANGED} WHERE id = $1 RETURNING {COLUMNS}", order_id, status.value
    )
    return from_row(row)


async def set_channel(conn: asyncpg.Connection, order_id: uuid.UUID, channel: ChannelAssignment) -> Order:
    """A move to another channel: a new courier, assigned now (the cut-off counts from here); the
    order leaves its trip (one rider: nobody else is on it), which closes for joins."""
    row = await conn.fetchrow(
        f"""WITH left_trip AS (
                UPDATE trips SET pickup_by = least(pickup_by, now())
                WHERE id = (SELECT trip_id FROM orders WHERE id = $1) AND riders = 1)
            UPDATE orders SET channel_id = $2, delivery_cost = $3, eta_seconds = $4::integer,
                assignment_source = $5, estimated_delivery_time = created_at + make_interval(secs => $4::integer),
                assigned_at = now(), trip_id = NULL, {_CHANGED}
            WHERE id = $1 RETURNING {COLUMNS}""",
        order_id, channel.channel_id, channel.cost, channel.eta_seconds, channel.source,
    )  # fmt: skip
    return from_row(row)


async def assign_unassigned(conn: asyncpg.Connection, placements: list[tuple[uuid.UUID, ChannelAssignment]],
                            seats: list[Seat] | None = None) -> list[Order]:  # fmt: skip
    """First channels for orders that still have none and are still open (a round's placements, in
    one statement; an order that got a channel, a trip or a pickup meanwhile is left out). Each
    assignment's `eta_seconds` counts from now here; stored, it counts from the order's creation.
    `seats`, one per placement when given: the trip each boarded (its row written first) and its
    co-rider (None: alone so far)."""
    trips = seats or [(None, None)] * len(placements)
    rows = await conn.fetch(
        f"""UPDATE orders o SET channel_id = p.channel_id, delivery_cost = p.cost,
                eta_seconds = CASE WHEN p.eta IS NOT NULL  -- least() would take a NULL for the maximum
                    THEN least(p.eta + extract(epoch FROM now() - o.created_at)::integer, {ETA_MAX}) END,
                estimated_delivery_time = now() + make_interval(secs => p.eta), assignment_source = p.source,
                assigned_at = now(), trip_id = p.trip_id, co_rider_id = p.co_rider_id,
                version = o.version + 1, updated_at = now()
            FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::integer[], $5::text[], $6::uuid[], $7::uuid[])
                 AS p(id, channel_id, cost, eta, source, trip_id, co_rider_id)
            WHERE o.id = p.id AND o.channel_id IS NULL AND o.trip_id IS NULL AND {OPEN_SQL}
            RETURNING {", ".join(f"o.{c.strip()}" for c in COLUMNS.split(","))}""",
        [order_id for order_id, _ in placements], [a.channel_id for _, a in placements],
        [a.cost for _, a in placements], [a.eta_seconds for _, a in placements], [a.source for _, a in placements],
        [trip for trip, _ in trips], [co_rider for _, co_rider in trips],
    )  # fmt: skip
    return [from_row(row) for row in rows]


@dataclass(frozen=True, slots=True)
class CoRider:
    """A second order joined the trip of this one (`order_id`, its first rider): it shares the
    courier from now on, at `cost` (its share of the trip) and delivered `deliver_in_s` from now
    (None: unchanged; its eta_seconds counts from its creation, as always), and the trip's pickup
    moves to `pickup_in_s` from now if that is later."""

    order_id: uuid.UUID
    co_rider_id: uuid.UUID
    trip_id: uuid.UUID
    pickup_in_s: float
    cost: Decimal | None
    deliver_in_s: float | None


async def set_co_riders(conn: asyncpg.Connection, joins: list[CoRider]) -> list[Order]:
    """Each `CoRider`'s change (first riders of different trips), in one statement; in their order."""
    rows = await conn.fetch(
        f"""WITH p AS (
                SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::float8[], $5::numeric[], $6::float8[])
                    AS p(id, co_rider_id, trip_id, pickup_in_s, cost, deliver_in_s)),
            trip AS (
                UPDATE trips t SET pickup_by = greatest(t.pickup_by, now() + make_interval(secs => p.pickup_in_s))
                FROM p WHERE t.id = p.trip_id)
            UPDATE orders o SET co_rider_id = p.co_rider_id, delivery_cost = coalesce(p.cost, o.delivery_cost),
                eta_seconds = CASE WHEN p.deliver_in_s IS NULL THEN o.eta_seconds ELSE
                    least(round(extract(epoch FROM now() - o.created_at) + p.deliver_in_s), {ETA_MAX})::integer END,
                estimated_delivery_time = coalesce(now() + make_interval(secs => p.deliver_in_s),
                                                   o.estimated_delivery_time),
                {_CHANGED}
            FROM p WHERE o.id = p.id
            RETURNING {", ".join(f"o.{c.strip()}" for c in COLUMNS.split(","))}""",
        [j.order_id for j in joins], [j.co_rider_id for j in joins], [j.trip_id for j in joins],
        [j.pickup_in_s for j in joins], [j.cost for j in joins], [j.deliver_in_s for j in joins],
    )  # fmt: skip
    by_id = {row["id"]: from_row(row) for row in rows}
    return [by_id[j.order_id] for j in joins]


# What a dispatch round reads of an order (o) and its restaurant (r).
ROUND_COLUMNS = """o.id, o.restaurant_id, o.channel_id, o.delivery_location, o.total, o.created_at,
                   o.estimated_delivery_time,
                   r.latitude, r.longitude, r.prep_minutes"""


# Open orders with no channel and no trip whose food has been within $1 s of ready for $2 s or more.
UNASSIGNED_DUE = f"""SELECT {ROUND_COLUMNS}
    FROM orders o JOIN restaurants r ON r.id = o.restaurant_id
    WHERE o.channel_id IS NULL AND {OPEN_SQL} AND o.trip_id IS NULL  -- orders_unassigned
      AND o.created_at + make_interval(secs => r.prep_minutes * 60 - $1 + $2) <= now()
    ORDER BY o.created_at LIMIT $3"""


async def unassigned_due(pool: asyncpg.Pool, lead_s: float, late_s: float, limit: int) -> list[asyncpg.Record]:
    """Open orders with no channel and no trip (held under dispatch_policy in-time, or left by
    every choice at creation) whose food has been within `lead_s` of ready for `late_s` or more,
    oldest first: ROUND_COLUMNS."""
    return await pool.fetch(UNASSIGNED_DUE, lead_s, late_s, limit)


def current_assignment(row: Any, now: datetime) -> CurrentAssignment:
    """A row of ROUND_COLUMNS as the solvers see it: times from `now`."""
    drop = row["delivery_location"]
    ready_at = (row["created_at"] - now).total_seconds() + row["prep_minutes"] * 60
    remaining = None
    if row["estimated_delivery_time"] is not None:
        remaining = max(int((row["estimated_delivery_time"] - now).total_seconds()), 0)
    delivery = Delivery(
        str(row["id"]),
        (row["latitude"], row["longitude"]),
        (drop["latitude"], drop["longitude"]),
        float(row["total"]),
        max(ready_at, 0.0),
    )
    return CurrentAssignment(delivery, row["channel_id"], remaining)
