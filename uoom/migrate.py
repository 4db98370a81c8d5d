"""Versioned plain-SQL migrations: `NNNN_name.sql` with `-- migrate:up` / `-- migrate:down`.

A small runner rather than a library: yoyo and alembic drive their own DB-API drivers (psycopg),
not asyncpg, and none refuses an edited, already applied file by checksum the way we need.
Each file runs in its own transaction; a session advisory lock serialises concurrent runs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    checksum: str
    up_sql: str
    down_sql: str


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


async def up(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
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
            try:
                async with conn.transaction():
                    await conn.execute(m.up_sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        m.version,
                        m.name,
                        m.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{m.path.name} failed and was rolled back: {exc}") from exc
            done.append(m.path.name)
        return done
    finally:
        await conn.close()  # closing the session releases the advisory lock


async def down(dsn: str, steps: int = 1, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Undo the last `steps` applied migrations, newest first."""
    if steps < 1:
        raise UsageError("steps must be at least 1")
    migrations = {m.version: m for m in load(directory)}
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        applied = await _applied(conn)
        _verify(list(migrations.values()), applied)
        undone = []
        for version in sorted(applied, reverse=True)[:steps]:
            m = migrations[version]
            try:
                async with conn.transaction():
                    await conn.execute(m.down_sql)
                    await conn.execute("DELETE FROM schema_migrations WHERE version = $1", version)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{m.path.name} down failed and was rolled back: {exc}") from exc
            undone.append(m.path.name)
        return undone
    finally:
        await conn.close()


def new(name: str, directory: Path = MIGRATIONS_DIR) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise UsageError(f"'{name}' gives an empty file name; use letters or digits")
    existing = [int(m.version) for m in load(directory)]
    path = directory / f"{(max(existing) + 1 if existing else 1):04d}_{slug}.sql"
    path.write_text(TEMPLATE)
    return path
