"""The outbox as an operator sees it: backlog, lag, retries, dead letters; and retention.

In the core (not in daemons/relay) because the relay's metrics, `uoom outbox` and the dashboard
all read the same numbers the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

STATUS_SQL = """
SELECT count(*) AS pending,
       count(*) FILTER (WHERE attempts > 0) AS retrying,
       count(*) FILTER (WHERE attempts > 0 AND next_attempt_at > now()) AS in_backoff,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS lag_seconds,
       (SELECT max(published_at) FROM outbox_events WHERE processed) AS last_published_at,
       (SELECT count(*) FROM dead_letters) AS dead_letters,
       (SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL) AS dead_letters_open
FROM outbox_events WHERE NOT processed
"""

# Small batches, each its own statement: short locks, no long transaction on a busy table.
# SKIP LOCKED lets several relays prune at once without waiting on each other.
PRUNE_SQL = """
WITH doomed AS (
  SELECT id FROM outbox_events
  WHERE processed AND published_at < now() - $1::interval
  ORDER BY published_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
DELETE FROM outbox_events o USING doomed WHERE o.id = doomed.id
"""
PRUNABLE_SQL = "SELECT count(*) FROM outbox_events WHERE processed AND published_at < now() - $1::interval"


@dataclass(frozen=True)
class OutboxStatus:
    pending: int  # not yet published (including those in backoff)
    retrying: int  # pending with at least one failed attempt
    in_backoff: int  # pending and waiting for their next attempt
    lag_seconds: float  # age of the oldest unpublished event; 0 when none
    last_published_at: datetime | None
    dead_letters: int
    dead_letters_open: int  # not replayed yet

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def outbox_status(conn: asyncpg.Connection | asyncpg.Pool) -> OutboxStatus:
    row = await conn.fetchrow(STATUS_SQL)
    assert row is not None
    return OutboxStatus(**dict(row))


async def prune(conn: asyncpg.Connection | asyncpg.Pool, older_than: timedelta, batch_size: int = 1000) -> int:
    """Delete published rows older than `older_than` in batches; the number deleted."""
    total = 0
    while True:
        result = await conn.execute(PRUNE_SQL, older_than, batch_size)
        deleted = int(result.split()[-1])
        total += deleted
        if deleted < batch_size:
            return total


async def prunable(conn: asyncpg.Connection | asyncpg.Pool, older_than: timedelta) -> int:
    count = await conn.fetchval(PRUNABLE_SQL, older_than)
    return int(count or 0)
