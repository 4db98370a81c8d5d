"""Versioned plain-SQL migrations: `NNNN_name.sql` with `-- migrate:up` / `-- migrate:down`.

A small runner rather than a library: yoyo and alembic drive their own DB-API drivers (psycopg),
not asyncpg, and none refuses an edited, already applied file by checksum the way we need.
Each file runs in its own transaction; a session advisory lock serialises concurrent runs.

A migration waits for its table locks at most `lock_timeout_ms` (UOOM_MIGRATE_LOCK_TIMEOUT_MS) per
try, `LOCK_TRIES` tries: an ALTER queued behind a long transaction (a relay holding outbox rows
while Kafka does not answer) would otherwise queue every later writer of that table behind it.
Giving up names the sessions in the way, read while the migration waited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg

from uoom.errors import MigrationError, UsageError

# Package data: the same folder in a checkout and in an installed wheel.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 0x75_6F_6F_6D  # "uoom": one advisory lock id for every migration run
UP, DOWN = "-- migrate:up", "-- migrate:down"
TEMPLATE = f"-- What this migration does, and why.\n{UP}\n\n{DOWN}\n"
LOCK_TIMEOUT_MS = 2000  # the default of UOOM_MIGRATE_LOCK_TIMEOUT_MS
LOCK_TRIES = 3

# What a down section destroys, read from its SQL: whole tables, and columns (their values).
_COMMENT = re.compile(r"--[^\n]*")
_DROP_TABLE = re.compile(r"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?([^;]+?)\s*(?:\bCASCADE|\bRESTRICT)?\s*(?:;|$)", re.I)
_TRUNCATE = re.compile(r"\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?([^;]+?)\s*(?:\b(?:RESTART|CONTINUE)\s+IDENTITY)?"
                       r"\s*(?:\bCASCADE|\bRESTRICT)?\s*(?:;|$)", re.I)  # fmt: skip
_DROP_COLUMN = re.compile(
    r"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(\S+)\s+DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?"
    r"(?!CONSTRAINT\b)([\w\"]+)",
    re.I,
)


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    checksum: str
    up_sql: str
    down_sql: str


@dataclass(frozen=True)
class Drop:
    """A table (or one column of it) a down section destroys, and the rows holding data there."""

    table: str
    column: str | None
    rows: int  # rows of the table (a column: rows where it is not null); 0 when it does not exist


@dataclass
class DownStep:
    migration: str  # file name
    drops: list[Drop] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.drops)


def destroys(down_sql: str) -> list[tuple[str, str | None]]:
    """(table, column or None) for each DROP TABLE, TRUNCATE and ALTER TABLE ... DROP COLUMN,
    in the order the SQL runs them."""
    sql = _COMMENT.sub("", down_sql)
    found: list[tuple[int, str, str | None]] = []
    for pattern in (_DROP_TABLE, _TRUNCATE):
        for match in pattern.finditer(sql):
            found += [(match.start(), name.strip(), None) for name in match[1].split(",") if name.strip()]
    found += [(m.start(), m[1], m[2]) for m in _DROP_COLUMN.finditer(sql)]
    return [(table, column) for _, table, column in sorted(found)]


@dataclass
class MigrationState:
    version: str
    name: str
    applied_at: datetime | None
    state: str  # applied | pending | edited | missing


def load(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_name.sql")
        text = path.read_text()
        if UP not in text or DOWN not in text:
            raise MigrationError(f"{path.name}: needs a '{UP}' and a '{DOWN}' section")
        up_sql, down_sql = text.split(UP, 1)[1].split(DOWN, 1)
        checksum = hashlib.sha256(text.encode()).hexdigest()
        found.append(Migration(match[1], match[2], path, checksum, up_sql, down_sql))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


async def _applied(conn: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
             version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    rows = await conn.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {r["version"]: r for r in rows}


def _verify(migrations: list[Migration], applied: dict[str, asyncpg.Record]) -> None:
    on_disk = {m.version: m for m in migrations}
    for version, row in sorted(applied.items()):
        m = on_disk.get(version)
        if m is None:
            raise MigrationError(f"applied migration {version}_{row['name']}.sql is missing from {MIGRATIONS_DIR}")
        if m.checksum != row["checksum"]:
            raise MigrationError(
                f"{m.path.name} was edited after it was applied; restore it and add a new migration instead"
            )


async def status(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[MigrationState]:
    migrations = load(directory)
    conn = await asyncpg.connect(dsn)
    try:
        applied = await _applied(conn)
    finally:
        await conn.close()
    states = []
    for m in migrations:
        row = applied.pop(m.version, None)
        if row is None:
            states.append(MigrationState(m.version, m.name, None, "pending"))
        else:
            state = "applied" if row["checksum"] == m.checksum else "edited"
            states.append(MigrationState(m.version, m.name, row["applied_at"], state))
    for version, row in sorted(applied.items()):
        states.append(MigrationState(version, row["name"], row["applied_at"], "missing"))
    return states


async def up(dsn: str, directory: Path = MIGRATIONS_DIR, *, lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> list[str]:
    """Apply every pending migration in order; returns the file names applied."""
    migrations = load(directory)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        applied = await _applied(conn)
        _verify(migrations, applied)
        done = []
        for m in migrations:
            if m.version in applied:
                continue

            async def apply(m: Migration = m) -> None:
                await conn.execute(m.up_sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )

            try:
                await _in_transaction(dsn, conn, m.path.name, apply, lock_timeout_ms)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{m.path.name} failed and was rolled back: {exc}") from exc
            done.append(m.path.name)
        return done
    finally:
        await conn.close()  # closing the session releases the advisory lock


async def _to_undo(conn: asyncpg.Connection, steps: int, directory: Path) -> list[Migration]:
    if steps < 1:
        raise UsageError("steps must be at least 1")
    migrations = {m.version: m for m in load(directory)}
    applied = await _applied(conn)
    _verify(list(migrations.values()), applied)
    return [migrations[version] for version in sorted(applied, reverse=True)[:steps]]


async def plan_down(dsn: str, steps: int = 1, directory: Path = MIGRATIONS_DIR) -> list[DownStep]:
    """What `down(steps)` would undo, newest first, and the rows each drop destroys; changes nothing."""
    conn = await asyncpg.connect(dsn)
    try:
        plan = []
        for m in await _to_undo(conn, steps, directory):
            step = DownStep(m.path.name)
            for table, column in destroys(m.down_sql):
                step.drops.append(Drop(table, column, await _rows(conn, table, column)))
            plan.append(step)
        return plan
    finally:
        await conn.close()


async def _rows(conn: asyncpg.Connection, table: str, column: str | None) -> int:
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return 0
    counted = f"count({column})" if column else "count(*)"
    try:
        # the names come from the migration file itself, which runs as SQL anyway
        return int(await conn.fetchval(f"SELECT {counted} FROM {table}"))  # noqa: S608
    except asyncpg.UndefinedColumnError:
        return 0


async def down(
    dsn: str,
    steps: int = 1,
    directory: Path = MIGRATIONS_DIR,
    *,
    expected: Sequence[str] | None = None,
    lock_timeout_ms: int = LOCK_TIMEOUT_MS,
) -> list[str]:
    """Undo the last `steps` applied migrations, newest first. `expected`: the file names a plan
    showed (`plan_down`); refused if another run applied or undid migrations meanwhile."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        chosen = await _to_undo(conn, steps, directory)
        if expected is not None and [m.path.name for m in chosen] != list(expected):
            raise MigrationError("the applied migrations changed since they were listed; run the command again")
        undone = []
        for m in chosen:

            async def undo(m: Migration = m) -> None:
                await conn.execute(m.down_sql)
                await conn.execute("DELETE FROM schema_migrations WHERE version = $1", m.version)

            try:
                await _in_transaction(dsn, conn, f"{m.path.name} down", undo, lock_timeout_ms)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{m.path.name} down failed and was rolled back: {exc}") from exc
            undone.append(m.path.name)
        return undone
    finally:
        await conn.close()


# -- waiting for locks, bounded ---------------------------------------------------------------------

# Who stands in the way of a waiting session: pid, application, state, for how long its
# transaction has run, what it last ran, and the table locks it holds in this database.
BLOCKERS_SQL = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), '?') AS application_name, coalesce(a.state, '?') AS state,
       coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8 AS transaction_seconds,
       left(btrim(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g')), 80) AS query,
       coalesce((SELECT string_agg(DISTINCT l.mode || ' on ' || c.relname, ', ')
                 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                 WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND c.relkind IN ('r', 'p')), 'no table lock') AS holds
FROM pg_stat_activity a
WHERE a.pid = ANY (pg_blocking_pids($1))
ORDER BY a.pid
"""


@dataclass(frozen=True)
class Blocker:
    pid: int
    application_name: str
    state: str
    transaction_seconds: float
    query: str
    holds: str

    def __str__(self) -> str:
        return (
            f"pid {self.pid} ({self.application_name}, {self.state}, transaction open {self.transaction_seconds:.0f} s)"
            f" holds {self.holds}; last query: {self.query}"
        )


async def _in_transaction(
    dsn: str,
    conn: asyncpg.Connection,
    label: str,
    work: Callable[[], Awaitable[None]],
    lock_timeout_ms: int,
) -> None:
    """`work` in a transaction whose lock waits last at most `lock_timeout_ms`, tried LOCK_TRIES
    times (a short pause between: the writers queued behind us go first); then MigrationError
    naming the sessions that held the locks."""
    for attempt in range(1, LOCK_TRIES + 1):
        async with _watching(dsn, conn.get_server_pid(), lock_timeout_ms) as seen:
            try:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
                    await work()
                return
            except asyncpg.LockNotAvailableError:
                if attempt == LOCK_TRIES:
                    who = "; ".join(str(b) for b in seen) or "a session that has finished since"
                    raise MigrationError(
                        f"{label} was rolled back: it could not lock its tables within {lock_timeout_ms} ms, "
                        f"{LOCK_TRIES} tries. In the way: {who}. End that transaction (or wait for it), "
                        "then run it again; UOOM_MIGRATE_LOCK_TIMEOUT_MS sets the wait"
                    ) from None
        await asyncio.sleep(min(lock_timeout_ms / 1000, 1.0))


@contextlib.asynccontextmanager
async def _watching(dsn: str, pid: int, lock_timeout_ms: int) -> AsyncIterator[list[Blocker]]:
    """The sessions blocking `pid`, as last seen (polled on a connection of its own while the
    block runs; once blocked, the waiting session cannot ask)."""
    seen: list[Blocker] = []
    every = min(max(lock_timeout_ms / 5000, 0.02), 0.5)

    async def poll() -> None:
        await asyncio.sleep(every)  # most migrations are done by then: no connection at all
        watcher = await asyncpg.connect(dsn)
        try:
            while True:
                found = [Blocker(**dict(row)) for row in await watcher.fetch(BLOCKERS_SQL, pid)]
                if found:
                    seen[:] = found
                await asyncio.sleep(every)
        finally:
            await watcher.close()

    task = asyncio.create_task(poll())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await task


def new(name: str, directory: Path = MIGRATIONS_DIR) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise UsageError(f"'{name}' gives an empty file name; use letters or digits")
    existing = [int(m.version) for m in load(directory)]
    path = directory / f"{(max(existing) + 1 if existing else 1):04d}_{slug}.sql"
    path.write_text(TEMPLATE)
    return path
