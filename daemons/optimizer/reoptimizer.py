"""Rolling re-optimization (dispatch_policy "rolling"; "at-once" runs no rounds): every
UOOM_DISPATCH_INTERVAL, re-solve the open orders a courier has not reached yet (the cut-off) and
that ride alone, and commit the moves whose gain net of their fee (UOOM_REASSIGN_FEE_SHARE x the old
channel's base cost) beats the threshold, leaving every channel a reserve of free slots for the
orders that arrive before the next round (docs/dispatch.md). Each move goes through the
`reassign_channel` use case (the order's channel and its outbox event, with the fee, in one
transaction; the cut-off and the co-rider checked again on the locked row). One replica at a time
(an advisory lock), so two optimizers never move the same orders.

Under dispatch_policy "in-time" (the default) the rounds (every UOOM_DISPATCH_RELEASE_INTERVAL)
assign instead the orders the API held without a channel, once their food is within
UOOM_DISPATCH_LEAD_SECONDS of ready (no fee, no reserve: they are the demand a reserve keeps slots
for), and move nothing. When a live channel bundles, the round is the create path's `dispatch()`
(daemons/optimizer/trips.py) on 20 due orders at a time: an order may pair with another or join an
open trip before its pickup; a part's fresh trips are written together (`open_held_trips`), its
joins board their trips as a new order does (`board_held`), the rest go by `assign_held`.
Otherwise the round is one min-cost flow (`reoptimize()`), written by `assign_held`."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from daemons.background import Background, rounds_as_leader
from daemons.optimizer.trips import TripPlanner
from uoom.assignment import CurrentAssignment, Reassignment, reoptimize
from uoom.assignment.dispatch import ROUND_DEADLINE_MS, ROUND_PART_ORDERS
from uoom.config import Settings
from uoom.domain.orders import ChannelAssignment, trip_plan_of
from uoom.live_channels import LiveChannels, LiveView
from uoom.services.channels import IN_TIME, assign_held, board_held, open_held_trips, reassign_channel
from uoom.stores.orders import MOVABLE, OPEN_SQL, ROUND_COLUMNS, current_assignment, unassigned_due
from uoom.stores.unit_of_work import PostgresUnitOfWork

log = logging.getLogger("uoom.optimizer.reoptimizer")
LEADER_LOCK = 0x75_6F_6F_6E  # one re-optimizing replica at a time
RESERVE_WINDOW_S = 60.0  # the arrival rate behind the reserve: orders placed over the last minute
# A round's parts (ROUND_PART_ORDERS) are spread over up to half the interval, at most this far
# apart: a round's events committed at once queued behind each other in the relay, and the
# creates' events behind them.
ROUND_PART_GAP_S = 1.0


def reserve_slots(arrivals: int, window_s: float, interval_s: float) -> int:
    """Free slots every channel keeps from moves: the orders expected before the next round (the
    recent arrival rate x the interval, rounded up). Any of them may want any channel, so each
    channel keeps that many."""
    return math.ceil(arrivals * interval_s / window_s) if window_s > 0 else 0


class Reoptimizer(Background):
    def __init__(self, settings: Settings, pool: asyncpg.Pool, live: LiveChannels,
                 trips: TripPlanner | None = None) -> None:  # fmt: skip
        """`trips`: in-time rounds form two-order trips with it when a live channel bundles."""
        self.settings, self.pool, self.live, self.trips = settings, pool, live, trips
        self.rounds = 0
        self.reassigned = 0
        self.released = 0  # in-time: held orders given their channel
        self.released_shared = 0  # ... of which into a trip of two (a pair, or joining an open trip)
        self.due_unplaced: int | None = None  # in-time: due orders the last round could not place
        self.fees_paid = Decimal(0)  # dollars the committed moves paid their old channels
        self.last_round_ms: float | None = None
        self.last_reserve: int | None = None

    @property
    def rolling(self) -> bool:
        return self.settings.dispatch_policy == "rolling"

    @property
    def in_time(self) -> bool:
        return self.settings.dispatch_policy == "in-time"

    async def run(self) -> None:
        if not (self.rolling or self.in_time):
            log.info("dispatch policy %s: no re-optimization rounds", self.settings.dispatch_policy)
            return
        if self.in_time:
            await rounds_as_leader(self.pool, LEADER_LOCK, self.settings.dispatch_release_interval, self.release, log,
                                   "in-time round")  # fmt: skip
        else:
            await rounds_as_leader(self.pool, LEADER_LOCK, self.settings.dispatch_interval, self.round, log,
                                   "re-optimization round")  # fmt: skip

    async def round(self) -> list[Reassignment]:
        started = time.perf_counter()
        rows = await self.pool.fetch(
            f"""SELECT {ROUND_COLUMNS}
                FROM orders o JOIN restaurants r ON r.id = o.restaurant_id
                WHERE {MOVABLE}
                ORDER BY o.created_at LIMIT $1""",  # noqa: S608 - module constants; values are bind parameters
            self.settings.reopt_max_orders,
        )
        if not rows:
            return []
        window = max(RESERVE_WINDOW_S, self.settings.dispatch_interval)
        # orders placed over the window and still open: nearly all of them (none is delivered that fast)
        arrivals = await self.pool.fetchval(
            f"SELECT count(*) FROM orders o WHERE {OPEN_SQL} AND o.created_at > now() - make_interval(secs => $1)",  # noqa: S608
            window,
        )
        reserve = self.last_reserve = reserve_slots(arrivals, window, self.settings.dispatch_interval)
        live = await self.live.current()
        now = datetime.now(UTC)
        current = [current_assignment(r, now) for r in rows]
        moves = await asyncio.to_thread(
            reoptimize,
            current,
            live.channels,
            live.weights,
            threshold=self.settings.reopt_threshold,
            fee_share=self.settings.reassign_fee_share,
            reserve=reserve,
            deadline_ms=self.settings.optimizer_deadline_ms,
            fallback_penalty=self.settings.fallback_penalty,
        )
        committed = [m for m in moves if await self._commit(m)]
        self.rounds += 1
        self.reassigned += len(committed)
        self.fees_paid += sum((m.fee for m in committed), Decimal(0))
        self.last_round_ms = (time.perf_counter() - started) * 1000
        return committed

    async def release(self) -> list[str]:
        """in-time: assign the open orders without a channel (held by the API, or left by every
        choice at creation) whose food is now within the lead of ready, or past it, oldest first.
        The ids of the orders assigned."""
        started = time.perf_counter()
        rows = await unassigned_due(self.pool, self.settings.dispatch_lead_seconds, 0.0, self.settings.reopt_max_orders)
        if not rows:
            self.due_unplaced = 0
            return []
        live = await self.live.current()
        now = datetime.now(UTC)
        current = [current_assignment(r, now) for r in rows]
        restaurants = [str(r["restaurant_id"]) for r in rows]
        deadline_ms = max(self.settings.optimizer_deadline_ms, ROUND_DEADLINE_MS)
        if self.trips is not None and self.trips.applies(live, restaurants):
            assigned = []
            parts = math.ceil(len(current) / ROUND_PART_ORDERS)
            gap_s = min(self.settings.dispatch_release_interval / 2 / parts, ROUND_PART_GAP_S)
            for start in range(0, len(current), ROUND_PART_ORDERS):
                if start:  # then the loads after the last part's placements, as far as they are known yet
                    await asyncio.sleep(gap_s)
                    live = await self.live.current()
                part = slice(start, start + ROUND_PART_ORDERS)
                assigned += await self._release_with_trips(current[part], restaurants[part], live, deadline_ms)
        else:
            placements = await asyncio.to_thread(reoptimize, current, live.channels, live.weights, threshold=0.0,
                                                 deadline_ms=deadline_ms,
                                                 fallback_penalty=self.settings.fallback_penalty)  # fmt: skip
            orders = await assign_held(
                [(uuid.UUID(p.order_id), p.to_channel_id, p.cost, p.eta_seconds, p.gain) for p in placements],
                PostgresUnitOfWork(self.pool),
            )
            assigned = [str(order.id) for order in orders]
        self.released += len(assigned)
        self.due_unplaced = len(rows) - len(assigned)
        self.rounds += 1
        self.last_round_ms = (time.perf_counter() - started) * 1000
        return assigned

    async def _release_with_trips(self, current: list[CurrentAssignment], restaurants: list[str], live: LiveView,
                                  deadline_ms: float) -> list[str]:  # fmt: skip
        """`dispatch()` on the due orders and the open trips. The orders off any trip, alone on a
        fresh one, or paired with each other go in one transaction each (`assign_held`,
        `open_held_trips`); those joining an open trip board their trips together in a third
        (`board_held`), as do the others if something changed under them since the round read them."""
        assert self.trips is not None
        deliveries = [c.delivery for c in current]
        solved = await self.trips.solve(deliveries, restaurants, live, deadline_ms, self.settings.fallback_penalty,
                                        inline=False)  # fmt: skip
        restaurant_of = {d.order_id: uuid.UUID(r) for d, r in zip(deliveries, restaurants, strict=True)}
        alone: list[tuple[uuid.UUID, str, Decimal | None, int | None, float | None]] = []
        fresh, joining = [], []
        for a in solved.result.assignments:
            if a.channel_id is None:
                continue
            ride = solved.rides.get(a.order_id)
            if ride is None:
                alone.append((uuid.UUID(a.order_id), a.channel_id, a.cost, a.eta_seconds, None))
                continue
            plan = trip_plan_of(ride.trip_id, a.channel_id, restaurant_of[a.order_id], ride.pickup_in_s,
                                ride.co_rider_dollars, ride.co_rider_deliver_s,
                                alone=ride.co_rider_id is None)  # fmt: skip
            rider = (uuid.UUID(a.order_id), ChannelAssignment(a.channel_id, a.cost, a.eta_seconds, IN_TIME), plan)
            if ride.co_rider_id is None or ride.co_rider_id in restaurant_of:  # a fresh trip of this part
                fresh.append((*rider, None if ride.co_rider_id is None else uuid.UUID(ride.co_rider_id)))
            else:
                joining.append(rider)
        assigned = [str(order.id) for order in await assign_held(alone, PostgresUnitOfWork(self.pool))]
        opened = await open_held_trips(fresh, PostgresUnitOfWork(self.pool))
        if opened is None:  # in the answer's order: a new pair's first rider boards before its partner joins
            joining = [(order_id, channel, plan) for order_id, channel, plan, _ in fresh] + joining
        else:
            assigned += [str(order.id) for order in opened]
            self.released_shared += sum(order.co_rider_id is not None for order in opened)
        for order, first in await board_held(joining, PostgresUnitOfWork(self.pool)):
            assigned.append(str(order.id))
            if first is not None:  # a join: of this round's pair, both count
                self.released_shared += 1 + (str(first.id) in assigned)
        return assigned

    async def _commit(self, move: Reassignment) -> bool:
        """Apply one move unless it no longer applies (picked up, moved by someone else, past the
        cut-off, or joined by a co-rider since the round read it)."""
        moved = await reassign_channel(
            uuid.UUID(move.order_id), move.from_channel_id, move.to_channel_id, move.cost, move.eta_seconds,
            move.gain, PostgresUnitOfWork(self.pool), fee=move.fee,
        )  # fmt: skip
        return moved is not None
