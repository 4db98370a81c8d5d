"""Claiming outbox rows and recording what became of them, inside one transaction per batch.

A batch is claimed by locking, with FOR UPDATE SKIP LOCKED, the oldest unprocessed event of each
aggregate whose next attempt is due. That lock is the aggregate's token: no other relay can claim
its head while we hold it, and a later event is never a head while an earlier one is unprocessed,
so per aggregate exactly one relay publishes, in position order. The head's unprocessed followers
come along (unlocked: the head's lock already keeps everyone else away from them). The locks live
as long as the transaction, which ends after Kafka acknowledged and the outcome is written; a
relay that dies mid-batch loses its connection, PostgreSQL rolls back, and the rows are claimable
again.

Position is the order of inserts, which per aggregate is the commit order because writers of
one order serialise on its row (the order UPDATE) before they append the event.
"""

from __future__ import annotations

import asyncpg

from daemons.relay.policy import OutboxEvent

CLAIM_SQL = """
WITH heads AS (
  SELECT e.id, e.position, e.type, e.aggregate_id, e.aggregate_type, e.aggregate_version, e.data,
         e.created_at, e.attempts, e.error_history
  FROM outbox_events e
  WHERE NOT e.processed
    AND e.next_attempt_at <= now()
    AND NOT EXISTS (
      SELECT 1 FROM outbox_events p
      WHERE p.aggregate_id = e.aggregate_id AND NOT p.processed AND p.position < e.position)
  ORDER BY e.position
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), followers AS (
  SELECT f.id, f.position, f.type, f.aggregate_id, f.aggregate_type, f.aggregate_version, f.data,
         f.created_at, f.attempts, f.error_history
  FROM outbox_events f JOIN heads h ON f.aggregate_id = h.aggregate_id
  WHERE NOT f.processed AND f.position > h.position
  ORDER BY f.position
  LIMIT $2
)
SELECT * FROM heads UNION ALL SELECT * FROM followers
"""

PUBLISHED_SQL = """
UPDATE outbox_events
SET processed = true, published_at = clock_timestamp(), attempts = attempts + 1
WHERE id = ANY($1::uuid[])
"""

RETRY_SQL = """
UPDATE outbox_events o
SET attempts = o.attempts + 1,
    next_attempt_at = clock_timestamp() + make_interval(secs => f.delay),
    last_error = f.error,
    error_history = o.error_history || jsonb_build_array(jsonb_build_object(
      'attempt', o.attempts + 1, 'at', clock_timestamp(), 'error', f.error, 'retryInSeconds', f.delay))
FROM unnest($1::uuid[], $2::float8[], $3::text[]) AS f(id, delay, error)
WHERE o.id = f.id
"""

# Moving to the dead-letter table frees the aggregate: its later events flow again.
DEAD_SQL = """
WITH moved AS (
  DELETE FROM outbox_events o USING unnest($1::uuid[], $2::text[]) AS f(id, error)
  WHERE o.id = f.id
  RETURNING o.*, f.error
)
INSERT INTO dead_letters AS d (id, event_type, aggregate_id, aggregate_type, aggregate_version, data,
                               attempts, last_error, error_history, created_at)
SELECT id, type, aggregate_id, aggregate_type, aggregate_version, data, attempts + 1, error,
       error_history || jsonb_build_array(jsonb_build_object(
         'attempt', attempts + 1, 'at', clock_timestamp(), 'error', error)),
       created_at
FROM moved
ON CONFLICT (id) DO UPDATE  -- a replayed event that failed again
SET attempts = d.attempts + excluded.attempts, last_error = excluded.last_error,
    error_history = d.error_history || excluded.error_history, failed_at = now()
"""


async def claim(conn: asyncpg.Connection, heads: int, followers: int) -> list[OutboxEvent]:
    """Lock up to `heads` aggregates' oldest due events, plus up to `followers` later events of
    those aggregates. Call inside a transaction; the locks end with it."""
    rows = await conn.fetch(CLAIM_SQL, heads, followers)
    return [OutboxEvent(**dict(row)) for row in rows]


async def record(
    conn: asyncpg.Connection,
    published: list[OutboxEvent],
    retries: list[tuple[OutboxEvent, float, str]],
    dead: list[tuple[OutboxEvent, str]],
) -> None:
    if published:
        await conn.execute(PUBLISHED_SQL, [e.id for e in published])
    if retries:
        await conn.execute(
            RETRY_SQL, [e.id for e, _, _ in retries], [d for _, d, _ in retries], [m for _, _, m in retries]
        )
    if dead:
        await conn.execute(DEAD_SQL, [e.id for e, _ in dead], [m for _, m in dead])
