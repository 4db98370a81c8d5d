"""Rolling re-optimization: every UOOM_DISPATCH_INTERVAL, re-solve the orders that are assigned and
not yet picked up, and commit the moves that gain more than the threshold through the
`reassign_channel` use case (the order's channel and its outbox event in one transaction). One
replica at a time (an advisory lock), so two optimizers never move the same orders."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from daemons.background import Background
from uoom.assignment import CurrentAssignment, Delivery, Reassignment, reoptimize
from uoom.config import Settings
from uoom.domain.orders import OPEN_STATES
from uoom.live_channels import LiveChannels
from uoom.services.channels import reassign_channel
from uoom.stores.unit_of_work import PostgresUnitOfWork

log = logging.getLogger("uoom.optimizer.reoptimizer")
LEADER_LOCK = 0x75_6F_6F_6E  # one re-optimizing replica at a time
OPEN = [s.value for s in OPEN_STATES]


class Reoptimizer(Background):
    def __init__(self, settings: Settings, pool: asyncpg.Pool, live: LiveChannels) -> None:
        self.settings, self.pool, self.live = settings, pool, live
        self.rounds = 0
        self.reassigned = 0
        self.last_round_ms: float | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.dispatch_interval)
            try:
                # A transaction's lock: it ends with the transaction whatever happens, so the
                # connection never goes back to the pool still holding it (the pool does not reset
                # session state: uoom/stores/postgres.py).
                async with self.pool.acquire() as leader, leader.transaction():
                    if not await leader.fetchval("SELECT pg_try_advisory_xact_lock($1)", LEADER_LOCK):
                        continue
                    await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("re-optimization round failed")

    async def round(self) -> list[Reassignment]:
        started = time.perf_counter()
        rows = await self.pool.fetch(
            """SELECT o.id, o.channel_id, o.delivery_location, o.total, o.created_at,
                      o.estimated_delivery_time, r.latitude, r.longitude, r.prep_minutes
               FROM orders o JOIN restaurants r ON r.id = o.restaurant_id
               WHERE o.status = ANY($1::order_status_enum[])
               ORDER BY o.created_at LIMIT $2""",
            OPEN,
            self.settings.reopt_max_orders,
        )
        if not rows:
            return []
        live = await self.live.current()
        now = datetime.now(UTC)
        current = [_current_assignment(r, now) for r in rows]
        moves = await asyncio.to_thread(
            reoptimize,
            current,
            live.channels,
            live.weights,
            threshold=self.settings.reopt_threshold,
            deadline_ms=self.settings.optimizer_deadline_ms,
            fallback_penalty=self.settings.fallback_penalty,
        )
        committed = [m for m in moves if await self._commit(m)]
        self.rounds += 1
        self.reassigned += len(committed)
        self.last_round_ms = (time.perf_counter() - started) * 1000
        return committed

    async def _commit(self, move: Reassignment) -> bool:
        """Apply one move unless the order changed meanwhile (picked up, or moved by someone else)."""
        moved = await reassign_channel(
            uuid.UUID(move.order_id), move.from_channel_id, move.to_channel_id, move.cost, move.eta_seconds,
            move.gain, PostgresUnitOfWork(self.pool),
        )  # fmt: skip
        return moved is not None


def _current_assignment(row: Any, now: datetime) -> CurrentAssignment:
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
