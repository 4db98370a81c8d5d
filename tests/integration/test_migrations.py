"""Migrations against a real PostgreSQL, each test in a database of its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from uoom import migrate
from uoom.errors import MigrationError


async def _tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_up_applies_every_file_and_status_says_applied(scratch_dsn: str) -> None:
    applied = await migrate.up(scratch_dsn)
    files = [m.path.name for m in migrate.load()]
    assert applied == files
    assert {"orders", "outbox_events", "dead_letters", "channels", "restaurants", "api_keys"} <= (
        await _tables(scratch_dsn)
    )
    states = await migrate.status(scratch_dsn)
    assert [s.state for s in states] == ["applied"] * len(files)
    assert all(s.applied_at is not None for s in states)


async def test_status_before_up_lists_everything_pending(scratch_dsn: str) -> None:
    states = await migrate.status(scratch_dsn)
    assert states and all(s.state == "pending" and s.applied_at is None for s in states)


async def test_reapplying_is_a_no_op(scratch_dsn: str) -> None:
    await migrate.up(scratch_dsn)
    assert await migrate.up(scratch_dsn) == []


async def test_an_edited_applied_file_is_refused_by_name(scratch_dsn: str, migrations_copy: Path) -> None:
    await migrate.up(scratch_dsn, migrations_copy)
    first = sorted(migrations_copy.glob("*.sql"))[0]
    first.write_text(first.read_text().replace("-- migrate:down", "SELECT 1;\n-- migrate:down"))
    with pytest.raises(MigrationError, match=first.name):
        await migrate.up(scratch_dsn, migrations_copy)
    states = await migrate.status(scratch_dsn, migrations_copy)
    assert states[0].state == "edited"


async def test_two_concurrent_ups_end_with_one_applied_set(scratch_dsn: str) -> None:
    first, second = await asyncio.gather(migrate.up(scratch_dsn), migrate.up(scratch_dsn))
    files = [m.path.name for m in migrate.load()]
    # The advisory lock lets one run apply everything; the other finds nothing left to do.
    assert sorted(first + second) == sorted(files)
    conn = await asyncpg.connect(scratch_dsn)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [r["version"] for r in versions] == [m.version for m in migrate.load()]


async def test_a_failing_file_is_rolled_back_whole(scratch_dsn: str, migrations_copy: Path) -> None:
    bad = migrations_copy / "0999_broken.sql"
    bad.write_text("-- migrate:up\nCREATE TABLE half_done (id int);\nSELECT no_such_column;\n-- migrate:down\n")
    with pytest.raises(MigrationError, match=r"0999_broken\.sql"):
        await migrate.up(scratch_dsn, migrations_copy)
    assert "half_done" not in await _tables(scratch_dsn)
    states = await migrate.status(scratch_dsn, migrations_copy)
    assert states[-1].state == "pending"


async def test_down_then_up_restores_the_schema(scratch_dsn: str) -> None:
    await migrate.up(scratch_dsn)
    undone = await migrate.down(scratch_dsn, steps=len(migrate.load()))
    assert undone == [m.path.name for m in reversed(migrate.load())]
    assert await _tables(scratch_dsn) == {"schema_migrations"}
    await migrate.up(scratch_dsn)
    assert "orders" in await _tables(scratch_dsn)


def test_new_creates_the_next_numbered_file(migrations_copy: Path) -> None:
    path = migrate.new("Add order notes!", migrations_copy)
    highest = max(int(p.name[:4]) for p in migrations_copy.glob("*.sql") if p != path)
    assert path.name == f"{highest + 1:04d}_add_order_notes.sql"
    assert migrate.load(migrations_copy)[-1].path == path
