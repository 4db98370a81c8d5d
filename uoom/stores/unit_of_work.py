"""The unit of work: one PostgreSQL transaction for an order change and its outbox event, and the
only place the use cases reach the order, outbox, idempotency and restaurant SQL through.

Why: the use cases (uoom/services/) say *what* changes together; this says *how* it is stored,
and a fake with the same methods (tests/unit) runs them without a database. As in Cosmic
Python's unit of work, nothing is kept unless `commit()` is called inside `async with uow:`;
leaving the block any other way rolls back. Events leave only through the outbox table, written
in the same transaction as the order (the relay publishes them).

A new order, the events and an idempotent answer are kept until `commit()`, which writes them in
one statement before the COMMIT: a create was a round trip for each (the order, its event, the
first rider's event when it joins a trip, the answer), each also a turn of a busy API's event
loop while the transaction held its connection.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

import asyncpg
from cachetools import TTLCache

from uoom import channels
from uoom.domain import events
from uoom.domain.channels import Channel
from uoom.domain.orders import Boarding, ChannelAssignment, NewOrder, Order, OrderStatus, Restaurant, TripPlan
from uoom.stores import orders, outbox, trips
from uoom.stores.snapshots import from_snapshot, to_snapshot


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's Idempotency-Key, per API key, with a hash of the request body it came with."""

    api_key_id: uuid.UUID
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class Remembered:
    request_hash: str
    order: Order  # as the first request answered it


class UnitOfWork(Protocol):
    """`restaurant` and `remembered` may also be called outside `async with` (no transaction)."""

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...  # fmt: skip
    async def commit(self) -> bool: ...
    async def restaurant(self, restaurant_id: uuid.UUID) -> Restaurant | None: ...
    async def remembered(self, key: IdempotencyKey) -> Remembered | None: ...
    async def remember(self, key: IdempotencyKey, order: Order) -> None: ...
    async def add_order(self, new: NewOrder) -> Order: ...
    async def lock_order(self, order_id: uuid.UUID) -> Order | None: ...
    async def lock_movable(self, order_id: uuid.UUID) -> Order | None: ...
    async def set_status(self, order_id: uuid.UUID, status: OrderStatus) -> Order: ...
    async def set_channel(self, order_id: uuid.UUID, channel: ChannelAssignment) -> Order: ...
    async def assign_unassigned(self, placements: list[tuple[uuid.UUID, ChannelAssignment]],
                                seats: list[orders.Seat] | None = None) -> list[Order]: ...  # fmt: skip
    async def board_trip(self, plan: TripPlan) -> Boarding | None: ...
    async def lock_orders(self, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, Order]: ...
    async def board_trips(self, plans: list[TripPlan]) -> dict[uuid.UUID, Boarding]: ...
    async def set_co_riders(self, joins: list[tuple[uuid.UUID, uuid.UUID, TripPlan]]) -> list[Order]: ...
    async def open_trips(self, fresh: list[tuple[TripPlan, int]]) -> None: ...
    async def set_co_rider(self, order_id: uuid.UUID, co_rider_id: uuid.UUID, plan: TripPlan) -> Order: ...
    async def channel(self, channel_id: str) -> Channel | None: ...
    async def add_event(self, event_type: str, order: Order, details: dict[str, Any] | None = None) -> None: ...


RESTAURANT_CACHE_SECONDS = 5.0  # how long a deactivated restaurant may still take orders


def restaurant_cache(
    size: int = 10_000, timer: Callable[[], float] = time.monotonic
) -> TTLCache[uuid.UUID, Restaurant]:
    """Active restaurants as last read, shared by a process's units of work: a create's lookup
    was a round trip per order for rows that change a few times a day. Unknown ids are not kept
    (a flood of them must not evict the real ones)."""
    return TTLCache(maxsize=size, ttl=RESTAURANT_CACHE_SECONDS, timer=timer)


class PostgresUnitOfWork:
    """One per use case call; enter it once per transaction (a create enters it twice)."""

    def __init__(self, pool: asyncpg.Pool, restaurants: TTLCache[uuid.UUID, Restaurant] | None = None) -> None:
        self.pool = pool
        self._restaurants = restaurants
        self._conn: Any = None  # a pool connection while inside `async with`
        self._tx: Any = None
        self._committed = False
        self._new: Order | None = None  # written at commit, with the events and the answer
        self._events: list[tuple[str, Order, dict[str, Any]]] = []
        self._answer: tuple[IdempotencyKey, Order] | None = None

    async def __aenter__(self) -> PostgresUnitOfWork:
        self._conn = await self.pool.acquire()
        self._tx = self._conn.transaction()
        self._committed, self._new, self._events, self._answer = False, None, [], None
        try:
            await self._tx.start()
        except BaseException:
            await self._release()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        try:
            if not self._committed and not self._conn.is_closed():
                await self._tx.rollback()
        except Exception:
            if exc is None:
                raise
            # the error that left the block says more; the pool discards a broken connection
        finally:
            await self._release()

    async def _release(self) -> None:
        conn, self._conn, self._tx = self._conn, None, None
        # A connection that PostgreSQL dropped mid-operation (a restart) cannot be reset ("another
        # operation is in progress"): the pool terminates it and opens a new one. The error that
        # ended the work, if any, is the one to report, and a commit that went through stays one.
        with contextlib.suppress(Exception):
            await self.pool.release(conn)

    async def commit(self) -> bool:
        """Write what was kept for it and commit: True; or False, with nothing kept, when the
        idempotent answer was not stored because a concurrent twin's is there (the caller leaves
        the block: the rollback undoes the rest)."""
        if (self._new is not None or self._events or self._answer is not None) and not await self._write_kept():
            return False
        await self._tx.commit()
        self._committed = True
        return True

    async def _write_kept(self) -> bool:
        """One statement: the idempotent answer, unless a twin's is there, and only then the new
        order and the events. True when they were written."""
        args: list[Any] = []
        parts = []
        if self._answer is not None:
            key, answer = self._answer
            args += [key.api_key_id, key.key, key.request_hash, to_snapshot(answer)]
            parts.append("""answer AS (INSERT INTO idempotency_keys (api_key_id, key, request_hash, status_code,
                response) VALUES ($1, $2, $3, 201, $4) ON CONFLICT DO NOTHING RETURNING 1)""")
        stored = "EXISTS (SELECT FROM answer)" if self._answer is not None else "true"
        if self._new is not None:
            row = orders.insert_row(len(args) + 1)
            args += orders.insert_values(self._new)
            parts.append(f"new AS ({orders.INSERT} SELECT {row} WHERE {stored})")
        if self._events:
            first = len(args) + 1
            args += outbox.columns(
                [(kind, order.id, order.version, {"order": to_snapshot(order), **details}, events.AGGREGATE_ORDER)
                 for kind, order, details in self._events]
            )  # fmt: skip
            parts.append(f"kept AS ({outbox.insert_from_arrays(first, stored)})")
        self._new, self._events, self._answer = None, [], None
        return bool(await self._conn.fetchval(f"WITH {', '.join(parts)} SELECT {stored}", *args))

    # Reads of rows that never change under a use case: outside `async with` they take a pool
    # connection without a transaction (a BEGIN and a ROLLBACK are two round trips and ~3 % of a
    # create's CPU); inside, they see the transaction.
    def _reader(self) -> Any:
        return self._conn if self._conn is not None else self.pool

    async def restaurant(self, restaurant_id: uuid.UUID) -> Restaurant | None:
        if self._restaurants is not None and (known := self._restaurants.get(restaurant_id)) is not None:
            return known
        row = await self._reader().fetchrow(
            "SELECT id, latitude, longitude, prep_minutes FROM restaurants WHERE id = $1 AND active", restaurant_id
        )
        if row is None:
            return None
        found = Restaurant(**dict(row))
        if self._restaurants is not None:
            self._restaurants[restaurant_id] = found
        return found

    async def remembered(self, key: IdempotencyKey) -> Remembered | None:
        row = await self._reader().fetchrow(
            "SELECT request_hash, response FROM idempotency_keys WHERE api_key_id = $1 AND key = $2",
            key.api_key_id, key.key,
        )  # fmt: skip
        return None if row is None else Remembered(row["request_hash"], from_snapshot(row["response"]))

    async def remember(self, key: IdempotencyKey, order: Order) -> None:
        """Store `order` as the key's answer at commit, unless a concurrent twin stored one first:
        then `commit()` keeps nothing and says False."""
        self._answer = (key, order)

    async def add_order(self, new: NewOrder) -> Order:
        """The order as it will be stored (inserted at commit; its trip, if any, boarded first)."""
        self._new = orders.stored(new, datetime.now(UTC))
        return self._new

    async def lock_order(self, order_id: uuid.UUID) -> Order | None:
        return await orders.lock(self._conn, order_id)

    async def lock_movable(self, order_id: uuid.UUID) -> Order | None:
        """The order, locked, if a re-optimizer may still move it (before the cut-off, no co-rider)."""
        return await orders.lock_movable(self._conn, order_id)

    async def set_status(self, order_id: uuid.UUID, status: OrderStatus) -> Order:
        return await orders.set_status(self._conn, order_id, status)

    async def set_channel(self, order_id: uuid.UUID, channel: ChannelAssignment) -> Order:
        return await orders.set_channel(self._conn, order_id, channel)

    async def assign_unassigned(self, placements: list[tuple[uuid.UUID, ChannelAssignment]],
                                seats: list[orders.Seat] | None = None) -> list[Order]:  # fmt: skip
        """First channels, ETAs from now, for the orders still without one (one statement); `seats`:
        the trip each boarded (`board_trip` first) and its co-rider."""
        return await orders.assign_unassigned(self._conn, placements, seats)

    async def board_trip(self, plan: TripPlan) -> Boarding | None:
        """The new order's trip (call before `add_order`); None when the trip does not take it."""
        return await trips.board(self._conn, plan)

    async def lock_orders(self, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, Order]:
        """`lock_order` of each, in one statement (those that exist)."""
        return await orders.lock_many(self._conn, order_ids)

    async def board_trips(self, plans: list[TripPlan]) -> dict[uuid.UUID, Boarding]:
        """`board_trip` for orders that exist already, one per trip, in a few statements; by trip id,
        only the trips that took theirs."""
        return await trips.board_many(self._conn, plans)

    async def set_co_riders(self, joins: list[tuple[uuid.UUID, uuid.UUID, TripPlan]]) -> list[Order]:
        """`set_co_rider` of (first rider, co-rider, plan) each, in one statement, in their order."""
        return await trips.joined_many(self._conn, joins)

    async def open_trips(self, fresh: list[tuple[TripPlan, int]]) -> None:
        """Whole trips (plan, riders) of orders that have none yet (call before `assign_unassigned`)."""
        await trips.open_fresh(self._conn, fresh)

    async def set_co_rider(self, order_id: uuid.UUID, co_rider_id: uuid.UUID, plan: TripPlan) -> Order:
        """`order_id` (the first rider, locked by `board_trip`) shares `plan`'s trip with `co_rider_id`
        from now on: its share, delivery time and the trip's pickup become the trip's."""
        return await trips.joined(self._conn, plan, order_id, co_rider_id)

    async def channel(self, channel_id: str) -> Channel | None:
        row = await self._reader().fetchrow(channels.SELECT + " WHERE id = $1", channel_id)
        return None if row is None else channels.to_channel(row)

    async def add_event(self, event_type: str, order: Order, details: dict[str, Any] | None = None) -> None:
        """An order event (written at commit): the order after the change under `order`, plus what
        the event adds."""
        self._events.append((event_type, order, details or {}))
