"""The transactional outbox, all of it: append (with the change), claim and record (the relay),
dead-letter, and what an operator reads (status) or removes (prune).

Why one module: the table's rules live in one place. A writer appends in the transaction that
changes the aggregate, so the event exists exactly when the change does. The relay claims, per
aggregate, the oldest unprocessed event whose next attempt is due, locked FOR UPDATE SKIP LOCKED:
that lock is the aggregate's token, so per aggregate exactly one relay publishes, in position
order (a later event is never a head while an earlier one is unprocessed). The head's unprocessed
followers come along unlocked (the head's lock keeps everyone else away). The locks last until
the batch's outcome is recorded; a relay that dies mid-batch loses its connection, PostgreSQL
rolls back, and the rows are claimable again. Position is the order of inserts, which per
aggregate is the commit order, because writers of one order serialise on its row (the UPDATE)
before they append.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import asyncpg

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(slots=True)
class OutboxEvent:
    """One outbox row as the relay claims it."""

    id: uuid.UUID
    position: int
    type: str
    aggregate_id: uuid.UUID
    aggregate_type: str
    aggregate_version: int
    data: dict[str, Any]
    created_at: datetime
    attempts: int  # attempts made before this one
    error_history: list[Any] = field(default_factory=list)
    replayed_at: datetime | None = None  # put back from the dead letters (`uoom dlq replay`)

    @property
    def enqueued_at(self) -> datetime:
        """When it went on the delivery path: a replay counts from the replay, not from the
        event's original time (which its envelope keeps)."""
        return self.replayed_at or self.created_at


async def append(
    conn: asyncpg.Connection,
    event_type: str,
    aggregate_id: uuid.UUID,
    aggregate_version: int,
    data: dict[str, Any],
    aggregate_type: str = "order",
) -> uuid.UUID:
    """Write one event on its own (the unit of work writes a use case's events with its other rows,
    `insert_from_arrays`); call inside the transaction that changes the aggregate. Its id is the
    envelope's `id`, by which consumers dedupe."""
    values = columns([(event_type, aggregate_id, aggregate_version, data, aggregate_type)])
    await conn.execute(insert_from_arrays(1), *values)
    event_id: uuid.UUID = values[0][0]
    return event_id


def columns(events: Sequence[tuple[str, uuid.UUID, int, dict[str, Any], str]]) -> list[list[Any]]:
    """Events (type, aggregate id, aggregate version, data, aggregate type), each with an id of
    its own, as the six arrays `insert_from_arrays` takes."""
    rows = [(uuid.uuid4(), kind, aggregate, aggregate_type, version, data)
            for kind, aggregate, version, data, aggregate_type in events]  # fmt: skip
    return [list(column) for column in zip(*rows, strict=True)]


def insert_from_arrays(first: int, condition: str = "true") -> str:
    """An INSERT of the events given as `columns()` from parameter $first on, in their order (their
    positions too), when `condition` (SQL of the caller's, no input) holds: one statement for many."""
    p = [f"${first + i}" for i in range(6)]
    return f"""INSERT INTO outbox_events (id, type, aggregate_id, aggregate_type, aggregate_version, data)
        SELECT e.id, e.type, e.aggregate_id, e.aggregate_type, e.aggregate_version, e.data
        FROM unnest({p[0]}::uuid[], {p[1]}::text[], {p[2]}::uuid[], {p[3]}::text[], {p[4]}::integer[],
                    {p[5]}::jsonb[]) WITH ORDINALITY AS e(id, type, aggregate_id, aggregate_type, aggregate_version,
                                                          data, n)
        WHERE {condition} ORDER BY e.n"""  # noqa: S608 - numbered placeholders and the caller's SQL; values are bind parameters


# -- the relay: claim a batch, then record what became of each event -------------------------------

# Why this shape: its cost must not depend on what the statistics say. Statistics taken when the
# table was small and published (autoanalyze runs after a burst, not during it) make every
# `NOT processed` scan look like one row, and a per-candidate "no earlier pending event" check then
# ran as a re-scan of the pending index per candidate: 8.7 s per claim on 20,000 pending events.
# Here no step leaves the planner a choice that could turn quadratic. `pending` walks the pending
# index (partial, in position order) for a window of the oldest pending events. A window is a
# prefix of the pending events, so the first event of an aggregate in it is the aggregate's oldest
# pending event (its head): found by grouping the window, no join. Each head is locked by its
# unique position alone (LIMIT 1 keeps the processed/due checks out of that lookup, where they
# would let the planner pick the pending index again); the checks run on the locked, latest row
# version. Followers are the window's later events of the locked heads' aggregates, marked by a
# window function over the window and the heads (a sort, no join), read by position. One
# statement, one snapshot.
CLAIM_SQL = """
WITH pending AS MATERIALIZED (
  SELECT aggregate_id, position FROM outbox_events
  WHERE NOT processed
  ORDER BY position
  LIMIT $3
), firsts AS MATERIALIZED (
  SELECT min(position) AS position FROM pending GROUP BY aggregate_id ORDER BY 1
), heads AS MATERIALIZED (
  SELECT e.id, e.position, e.type, e.aggregate_id, e.aggregate_type, e.aggregate_version, e.data,
         e.created_at, e.attempts, e.error_history, e.replayed_at
  FROM firsts CROSS JOIN LATERAL (
    SELECT * FROM outbox_events e WHERE e.position = firsts.position LIMIT 1 FOR UPDATE SKIP LOCKED
  ) e
  WHERE NOT e.processed AND e.next_attempt_at <= now()
  LIMIT $1
), chosen AS MATERIALIZED (
  SELECT position FROM (
    SELECT position, held, max(position) FILTER (WHERE held) OVER (PARTITION BY aggregate_id) AS head_position
    FROM (SELECT aggregate_id, position, false AS held FROM pending
          UNION ALL SELECT aggregate_id, position, true FROM heads) t
  ) m
  WHERE NOT held AND position > head_position
  ORDER BY position
  LIMIT $2
), followers AS (
  SELECT f.* FROM chosen CROSS JOIN LATERAL (
    SELECT f.id, f.position, f.type, f.aggregate_id, f.aggregate_type, f.aggregate_version, f.data,
           f.created_at, f.attempts, f.error_history, f.replayed_at
    FROM outbox_events f WHERE f.position = chosen.position LIMIT 1
  ) f
)
SELECT s.scanned, c.*
FROM (SELECT count(*) AS scanned FROM pending) s
LEFT JOIN (SELECT * FROM heads UNION ALL SELECT * FROM followers) c ON true
"""
WINDOW_PER_HEAD = 4  # window = 4 x heads wanted, widened when it held too few claimable heads

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
    those aggregates. Call inside a transaction; the locks end with it.

    The window of oldest pending events grows (x4 a step) while it was full and gave fewer events
    than `heads`: other relays hold its aggregates, or they wait for a retry, and due heads lie
    further on. Locks taken by a narrower try are ours and come back in the wider one."""
    window = max(heads * WINDOW_PER_HEAD, 1)
    while True:
        rows = await conn.fetch(CLAIM_SQL, heads, followers, window)
        events = [OutboxEvent(**{k: v for k, v in row.items() if k != "scanned"}) for row in rows if row["id"]]
        if len(events) >= heads or rows[0]["scanned"] < window:
            return events
        window *= WINDOW_PER_HEAD


async def record(
    conn: asyncpg.Connection,
    published: list[OutboxEvent],
    retries: list[tuple[OutboxEvent, float, str]],
    dead: list[tuple[OutboxEvent, str]],
) -> None:
    """Published rows are marked, failed ones scheduled again (event, delay, error) or moved to
    the dead-letter table (event, error); in the claiming transaction."""
    if published:
        await conn.execute(PUBLISHED_SQL, [e.id for e in published])
    if retries:
        await conn.execute(
            RETRY_SQL, [e.id for e, _, _ in retries], [d for _, d, _ in retries], [m for _, _, m in retries]
        )
    if dead:
        await conn.execute(DEAD_SQL, [e.id for e, _ in dead], [m for _, m in dead])


# -- the operator's view: backlog, lag, retries, dead letters; and retention ------------------------

STATUS_SQL = """
SELECT count(*) AS pending,
       count(*) FILTER (WHERE attempts > 0) AS retrying,
       count(*) FILTER (WHERE attempts > 0 AND next_attempt_at > now()) AS in_backoff,
       coalesce(extract(epoch FROM now() - min(coalesce(replayed_at, created_at))), 0)::float8 AS lag_seconds,
       (SELECT max(published_at) FROM outbox_events WHERE processed) AS last_published_at,
       (SELECT count(*) FROM dead_letters) AS dead_letters,
       (SELECT count(*) FROM dead_letters  -- open: not replayed, or dead again since
        WHERE replayed_at IS NULL OR failed_at > replayed_at) AS dead_letters_open
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
    dead_letters_open: int  # not replayed yet, or dead again after a replay

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def status(conn: Executor) -> OutboxStatus:
    """What the relay's metrics, `uoom outbox status` and the dashboard all read."""
    row = await conn.fetchrow(STATUS_SQL)
    assert row is not None
    return OutboxStatus(**dict(row))


async def prune(conn: Executor, older_than: timedelta, batch_size: int = 1000) -> int:
    """Delete published rows older than `older_than` in batches; the number deleted. Unpublished
    rows are never deleted, however old."""
    total = 0
    while True:
        result = await conn.execute(PRUNE_SQL, older_than, batch_size)
        deleted = int(result.split()[-1])
        total += deleted
        if deleted < batch_size:
            return total


async def prunable(conn: Executor, older_than: timedelta) -> int:
    count = await conn.fetchval(PRUNABLE_SQL, older_than)
    return int(count or 0)


# -- the dead letters: what the operator reads, replays and purges (`uoom dlq`) --------------------


@dataclass(frozen=True)
class DeadLetterFilter:
    """Dead letters to select; the fields given all apply (none: every dead letter)."""

    ids: tuple[uuid.UUID, ...] = ()
    since: datetime | None = None  # died at or after
    event_type: str | None = None
    aggregate_id: uuid.UUID | None = None


@dataclass(frozen=True)
class DeadLetter:
    id: uuid.UUID
    event_type: str
    aggregate_id: uuid.UUID
    aggregate_type: str
    aggregate_version: int
    data: dict[str, Any]
    attempts: int  # every attempt, over every replay
    last_error: str
    error_history: list[Any]
    created_at: datetime  # the event's own time (its envelope's occurredAt)
    failed_at: datetime  # when it died (last, if it died again after a replay)
    replayed_at: datetime | None  # last replay
    replay_count: int
    # dead | replaying (back in the outbox, not published yet) | delivered (published after its
    # replay) | replayed (its outbox row was pruned since)
    state: str
    published_at: datetime | None  # of its replay


# The outbox row of a replayed event keeps its id: the join tells where the replay stands.
DEAD_LETTERS_SQL = """
SELECT d.id, d.event_type, d.aggregate_id, d.aggregate_type, d.aggregate_version, d.data, d.attempts,
       d.last_error, d.error_history, d.created_at, d.failed_at, d.replayed_at, d.replay_count,
       CASE WHEN d.replayed_at IS NULL OR d.failed_at > d.replayed_at THEN 'dead'  -- open
            WHEN o.id IS NULL THEN 'replayed'
            WHEN o.processed THEN 'delivered'
            ELSE 'replaying' END AS state,
       o.published_at
FROM dead_letters d LEFT JOIN outbox_events o ON o.id = d.id
WHERE (cardinality($1::uuid[]) = 0 OR d.id = ANY($1::uuid[]))
  AND ($2::timestamptz IS NULL OR d.failed_at >= $2)
  AND ($3::text IS NULL OR d.event_type = $3)
  AND ($4::uuid IS NULL OR d.aggregate_id = $4)
"""
OLDEST_EVENT_FIRST = "ORDER BY d.created_at, d.id LIMIT $5"
NEWEST_DEATH_FIRST = "ORDER BY d.failed_at DESC, d.id LIMIT $5"

# Back on the delivery path, in one statement: the outbox row again (the SAME id, so consumers
# dedupe; the original created_at, so the envelope is the one that died; fresh attempts; a new
# position, so it goes behind whatever its order has pending), and the dead letter's bookkeeping.
# An event still pending from an earlier replay is left alone (nothing returned).
REPLAY_SQL = """
WITH dead AS (
  SELECT * FROM dead_letters WHERE id = $1 FOR UPDATE
), back AS (
  INSERT INTO outbox_events AS o (id, type, aggregate_id, aggregate_type, aggregate_version, data,
                                  created_at, replayed_at)
  SELECT id, event_type, aggregate_id, aggregate_type, aggregate_version, data, created_at, now()
  FROM dead
  ON CONFLICT (id) DO UPDATE
  SET position = DEFAULT, processed = false, published_at = NULL, attempts = 0, next_attempt_at = now(),
      last_error = NULL, error_history = '[]', replayed_at = now()
  WHERE o.processed
  RETURNING o.id
)
UPDATE dead_letters d SET replayed_at = now(), replay_count = d.replay_count + 1
FROM back WHERE d.id = back.id
RETURNING d.replay_count
"""

PURGE_SQL = "DELETE FROM dead_letters WHERE failed_at < $1 RETURNING id"
PURGEABLE_SQL = "SELECT count(*) FROM dead_letters WHERE failed_at < $1"


async def dead_letters(
    conn: Executor, where: DeadLetterFilter, *, newest_first: bool = False, limit: int | None = None
) -> list[DeadLetter]:
    """Matching dead letters, oldest event first (the order a replay takes), or newest death first."""
    rows = await conn.fetch(
        DEAD_LETTERS_SQL + (NEWEST_DEATH_FIRST if newest_first else OLDEST_EVENT_FIRST),
        list(where.ids), where.since, where.event_type, where.aggregate_id, limit,
    )  # fmt: skip
    return [DeadLetter(**dict(row)) for row in rows]


async def dead_letter(conn: Executor, dead_letter_id: uuid.UUID) -> DeadLetter | None:
    found = await dead_letters(conn, DeadLetterFilter(ids=(dead_letter_id,)))
    return found[0] if found else None


async def replay(conn: asyncpg.Connection, dead_letter_id: uuid.UUID) -> bool:
    """Put one dead letter back in the outbox (see REPLAY_SQL); False when it is not there to
    replay (purged meanwhile, or still pending from an earlier replay). Call in a transaction."""
    return await conn.fetchval(REPLAY_SQL, dead_letter_id) is not None


async def purge(conn: Executor, before: datetime) -> list[uuid.UUID]:
    """Delete dead letters that died before `before`; their ids."""
    return [row["id"] for row in await conn.fetch(PURGE_SQL, before)]


async def purgeable(conn: Executor, before: datetime) -> int:
    return int(await conn.fetchval(PURGEABLE_SQL, before) or 0)
