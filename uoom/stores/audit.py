"""The operator audit (`operator_audit`): who did what to data that matters, from which host,
with which filter, to how many rows. A record is opened before the work and its count kept in
the same transaction as each change, so it is exact even when the work stops half way."""

from __future__ import annotations

import getpass
import socket
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from uoom.stores.outbox import Executor


@dataclass(frozen=True)
class Actor:
    """Who runs the command: the OS user and the host."""

    user: str
    host: str

    @classmethod
    def here(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's bare uid)
            user = "unknown"
        return cls(user, socket.gethostname())


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    action: str
    os_user: str
    host: str
    filter: dict[str, Any]
    count: int
    event_ids: list[uuid.UUID]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def open_record(conn: Executor, action: str, actor: Actor, filter: dict[str, Any]) -> int:
    """A record with count 0; its id."""
    sql = "INSERT INTO operator_audit (action, os_user, host, filter) VALUES ($1, $2, $3, $4) RETURNING id"
    return int(await conn.fetchval(sql, action, actor.user, actor.host, filter))


async def add(conn: Executor, record_id: int, event_ids: Sequence[uuid.UUID]) -> None:
    """Count rows into a record; in the transaction that changed them."""
    await conn.execute(
        "UPDATE operator_audit SET count = count + $2, event_ids = event_ids || $3::uuid[] WHERE id = $1",
        record_id, len(event_ids), list(event_ids),
    )  # fmt: skip


async def history(conn: Executor, action_prefix: str = "", limit: int | None = None) -> list[AuditRecord]:
    """Newest first."""
    rows = await conn.fetch(
        """SELECT id, at, action, os_user, host, filter, count, event_ids FROM operator_audit
           WHERE starts_with(action, $1) ORDER BY at DESC, id DESC LIMIT $2""",
        action_prefix, limit,
    )  # fmt: skip
    return [AuditRecord(**dict(row)) for row in rows]


async def touching(conn: Executor, event_id: uuid.UUID) -> list[AuditRecord]:
    """The records that name an event, oldest first (`uoom dlq show`: its replays)."""
    rows = await conn.fetch(
        """SELECT id, at, action, os_user, host, filter, count, event_ids FROM operator_audit
           WHERE $1 = ANY(event_ids) ORDER BY at, id""",
        event_id,
    )
    return [AuditRecord(**dict(row)) for row in rows]
