"""The dead letters as the `uoom dlq` use cases see them (uoom/services/dead_letters.py): the
outbox module's SQL, each change in one transaction with its audit count."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from uoom.stores import audit, outbox
from uoom.stores.audit import Actor
from uoom.stores.outbox import DeadLetter, DeadLetterFilter


class PostgresDeadLetters:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def select(self, where: DeadLetterFilter) -> list[DeadLetter]:
        return await outbox.dead_letters(self.conn, where)

    async def open_audit(self, action: str, actor: Actor, filter: dict[str, Any]) -> int:
        return await audit.open_record(self.conn, action, actor, filter)

    async def replay(self, dead_letter_id: uuid.UUID, audit_id: int) -> bool:
        async with self.conn.transaction():
            if not await outbox.replay(self.conn, dead_letter_id):
                return False
            await audit.add(self.conn, audit_id, [dead_letter_id])
        return True

    async def purgeable(self, before: datetime) -> int:
        return await outbox.purgeable(self.conn, before)

    async def purge(self, before: datetime, audit_id: int) -> int:
        async with self.conn.transaction():
            ids = await outbox.purge(self.conn, before)
            await audit.add(self.conn, audit_id, ids)
        return len(ids)
