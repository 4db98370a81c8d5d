"""The safety net of dispatch_policy in-time: a held order (no channel yet, for the optimizer's round
to assign once its food is near ready) must not wait forever for an optimizer that is down. Every
UOOM_DISPATCH_RELEASE_INTERVAL, one API worker at a time (an advisory lock) takes the held orders
the optimizer has left past their due time by LATE_ROUNDS of its rounds (at least
UOOM_DISPATCH_HELD_GRACE_SECONDS) and assigns them as the API does when the optimizer does not
answer: the ranking's best feasible channel, the greedy rule, the configured default. Each goes
through `reassign_channel`, the use case of the optimizer's rounds (channel and event in one
transaction, on the locked row: a round that assigned it meanwhile wins). An order no channel can
take (all full) stays held and is tried again: by the optimizer's next round or by this."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import asyncpg

from daemons.api.assign import Assigner
from daemons.background import Background, rounds_as_leader
from uoom.config import Settings
from uoom.services.channels import reassign_channel
from uoom.stores.orders import current_assignment, unassigned_due
from uoom.stores.unit_of_work import PostgresUnitOfWork

log = logging.getLogger("uoom.api.held")
SWEEPER_LOCK = 0x68_65_6C_64  # one sweeping API worker at a time ("held")
LATE_ROUNDS = 3  # the optimizer's rounds a due order may wait before the API steps in


class HeldSweeper(Background):
    def __init__(self, settings: Settings, pool: asyncpg.Pool, assigner: Assigner) -> None:
        self.settings, self.pool, self.assigner = settings, pool, assigner
        self.assigned = 0  # held orders the API assigned because the optimizer had not

    @property
    def late_s(self) -> float:
        return max(LATE_ROUNDS * self.settings.dispatch_release_interval, self.settings.dispatch_held_grace_seconds)

    async def run(self) -> None:
        if self.settings.dispatch_policy == "in-time":
            await rounds_as_leader(self.pool, SWEEPER_LOCK, self.settings.dispatch_release_interval, self.sweep, log,
                                   "assigning the overdue held orders")  # fmt: skip

    async def sweep(self) -> int:
        """Assign the held orders overdue by `late_s`; how many were."""
        rows = await unassigned_due(
            self.pool, self.settings.dispatch_lead_seconds, self.late_s, self.settings.reopt_max_orders
        )
        done = 0
        live = await self.assigner.live.current(fresh=True) if rows else None
        for row in rows:
            current = current_assignment(row, datetime.now(UTC))
            choice = await self.assigner.without_optimizer(current.delivery, live)
            if choice.channel_id is None:
                continue
            moved = await reassign_channel(
                uuid.UUID(current.delivery.order_id), None, choice.channel_id, choice.cost, choice.eta_seconds,
                0.0, PostgresUnitOfWork(self.pool), source=choice.source,
            )  # fmt: skip
            done += moved is not None
        if done:
            log.warning("assigned %d held orders the optimizer had left %.0f s past due", done, self.late_s)
        self.assigned += done
        return done
