"""Rolling re-optimization (dispatch_policy "rolling", the default; "at-once" runs no rounds): every
UOOM_DISPATCH_INTERVAL, re-solve the open orders a courier has not reached yet (the cut-off) and
that ride alone, and commit the moves whose gain net of their fee (UOOM_REASSIGN_FEE_SHARE x the old
channel's base cost) beats the threshold, leaving every channel a reserve of free slots for the
orders that arrive before the next round (docs/dispatch.md). Each move goes through the
`reassign_channel` use case (the order's channel and its outbox event, with the fee, in one
transaction; the cut-off and the co-rider checked again on the locked row). One replica at a time
(an advisory lock), so two optimizers never move the same orders.

Under dispatch_policy "in-time" the rounds (every UOOM_DISPATCH_RELEASE_INTERVAL) assign instead
the orders the API held without a channel, once their food is within UOOM_DISPATCH_LEAD_SECONDS of
ready: one exact assignment of all those due (the min-cost flow, no fee, no reserve: they are the
demand a reserve keeps slots for), written together by `assign_held`, and no moves."""

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
from uoom.assignment import Reassignment, reoptimize
from uoom.config import Settings
from uoom.live_channels import LiveChannels
from uoom.services.channels import assign_held, reassign_channel
from uoom.stores.orders import MOVABLE, OPEN_SQL, ROUND_COLUMNS, current_assignment, unassigned_due
from uoom.stores.unit_of_work import PostgresUnitOfWork

log = logging.getLogger("uoom.optimizer.reoptimizer")
LEADER_LOCK = 0x75_6F_6F_6E  # one re-optimizing replica at a time
RESERVE_WINDOW_S = 60.0  # the arrival rate behind the reserve: orders placed over the last minute
# An in-time round answers no request: it may take a second, not a request's 80 ms. Cut short, a
# round places nothing, and a backlog (after an outage, on a busy machine) would never be placed.
RELEASE_DEADLINE_MS = 1000.0


def reserve_slots(arrivals: int, window_s: float, interval_s: float) -> int:
    """Free slots every channel keeps from moves: the orders expected before the next round (the
    recent arrival rate x the interval, rounded up). Any of them may want any channel, so each
    channel keeps that many."""
    return math.ceil(arrivals * interval_s / window_s) if window_s > 0 else 0


class Reoptimizer(Background):
    def __init__(self, settings: Settings, pool: asyncpg.Pool, live: LiveChannels) -> None:
        self.settings, self.pool, self.live = settings, pool, live
        self.rounds = 0
        self.reassigned = 0
        self.released = 0  # in-time: held orders given their channel
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

    async def release(self) -> list[Reassignment]:
        """in-time: assign the open orders without a channel (held by the API, or left by every
        choice at creation) whose food is now within the lead of ready, or past it, oldest first."""
        started = time.perf_counter()
        rows = await unassigned_due(self.pool, self.settings.dispatch_lead_seconds, 0.0, self.settings.reopt_max_orders)
        if not rows:
            self.due_unplaced = 0
            return []
        live = await self.live.current()
        now = datetime.now(UTC)
        placements = await asyncio.to_thread(
            reoptimize,
            [current_assignment(r, now) for r in rows],
            live.channels,
            live.weights,
            threshold=0.0,
            deadline_ms=max(self.settings.optimizer_deadline_ms, RELEASE_DEADLINE_MS),
            fallback_penalty=self.settings.fallback_penalty,
        )
        assigned = await assign_held(
            [(uuid.UUID(p.order_id), p.to_channel_id, p.cost, p.eta_seconds, p.gain) for p in placements],
            PostgresUnitOfWork(self.pool),
        )
        self.released += len(assigned)
        self.due_unplaced = len(rows) - len(assigned)
        self.rounds += 1
        self.last_round_ms = (time.perf_counter() - started) * 1000
        done = {str(order.id) for order in assigned}
        return [p for p in placements if p.order_id in done]

    async def _commit(self, move: Reassignment) -> bool:
        """Apply one move unless it no longer applies (picked up, moved by someone else, past the
        cut-off, or joined by a co-rider since the round read it)."""
        moved = await reassign_channel(
            uuid.UUID(move.order_id), move.from_channel_id, move.to_channel_id, move.cost, move.eta_seconds,
            move.gain, PostgresUnitOfWork(self.pool), fee=move.fee,
        )  # fmt: skip
        return moved is not None
