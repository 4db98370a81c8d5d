"""A migration run while the relay holds outbox rows (Kafka not acknowledging) fails fast and
names the holder, and order writes go on meanwhile (issue 12).

An ALTER TABLE waiting for its lock queues every later writer of the table behind it: without a
bound, one relay batch held open during a Kafka outage would stall every order write for as long
as the migration waits. The holder here is the relay's own claim, left open as a batch is while
its publish waits for Kafka.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from commands.main import app
from daemons.relay import Relay
from tests.integration.relay_support import (
    assert_order_kept,
    kafka_topics,
    pending,
    plan,
    read_topic,
    relay_dsn,
    relay_settings,
    running,
    until,
    write_events,
)
from tests.integration.test_relay_failures import own_kafka
from uoom import migrate
from uoom.errors import MigrationError
from uoom.stores import outbox
from uoom.stores.postgres import _init_connection

__all__ = ["own_kafka", "relay_dsn"]  # fixtures
LOCK_TIMEOUT_MS = 300
runner = CliRunner()


@pytest.fixture
async def relay_batch(relay_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A relay-like session in the middle of a batch: rows claimed, transaction open."""
    async with _connect(relay_dsn) as pool:
        await write_events(pool, plan(orders=20, versions=3))
    conn = await asyncpg.connect(relay_dsn, server_settings={"application_name": "uoom-relay"})
    await _init_connection(conn)
    transaction = conn.transaction()
    await transaction.start()
    assert await outbox.claim(conn, 500, 500)
    try:
        yield conn
    finally:
        await transaction.rollback()
        await conn.close()


def _connect(dsn: str) -> asyncpg.pool.Pool:
    return asyncpg.create_pool(dsn, min_size=2, max_size=4, init=_init_connection)


def _outbox_migration(directory: Path) -> Path:
    path = migrate.new("add_outbox_note", directory)
    path.write_text(
        "-- needs an ACCESS EXCLUSIVE lock on the outbox\n-- migrate:up\n"
        "ALTER TABLE outbox_events ADD COLUMN note text;\n"
        "-- migrate:down\nALTER TABLE outbox_events DROP COLUMN note;\n"
    )
    return path


async def _write_orders(pool: asyncpg.Pool, stop: asyncio.Event, latencies: list[float]) -> None:
    """Order writes as the API makes them (one transaction, outbox append), back to back."""
    while not stop.is_set():
        started = time.monotonic()
        async with pool.acquire() as conn, conn.transaction():
            await outbox.append(conn, "order.created", uuid.uuid4(), 1, {"order": {}})
        latencies.append(time.monotonic() - started)
        await asyncio.sleep(0.02)


async def test_migration_fails_fast_naming_the_relay_and_writes_go_on(relay_dsn, relay_batch, migrations_copy) -> None:
    added = _outbox_migration(migrations_copy)
    # without a bound the migration would wait as long as the batch: end it at last, so that such
    # a migration fails this test (too slow, and applied) instead of hanging it
    release = asyncio.get_running_loop().call_later(15, lambda: asyncio.ensure_future(_end(relay_batch)))
    async with _connect(relay_dsn) as pool:
        stop, latencies = asyncio.Event(), []
        writer = asyncio.create_task(_write_orders(pool, stop, latencies))
        await asyncio.sleep(0.2)
        before = len(latencies)
        started = time.monotonic()
        with pytest.raises(MigrationError) as failed:
            await migrate.up(relay_dsn, migrations_copy, lock_timeout_ms=LOCK_TIMEOUT_MS)
        took = time.monotonic() - started
        release.cancel()
        during = len(latencies) - before
        stop.set()
        await writer
        message = str(failed.value)
        columns = await pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'outbox_events'"
        )
        applied = await pool.fetchval("SELECT count(*) FROM schema_migrations WHERE name = 'add_outbox_note'")

    # 3 tries of 0.3 s with two pauses of 0.3 s: well under the 10 s a write would once have waited
    assert took < 5, f"the migration took {took:.1f} s to give up"
    assert "\n" not in message
    assert added.name in message and f"pid {relay_batch.get_server_pid()} (uoom-relay" in message
    assert "RowShareLock on outbox_events" in message
    assert "note" not in {c["column_name"] for c in columns} and applied == 0
    # writes went on: each waited at most one lock timeout behind a try, none failed
    assert during >= 5, f"only {during} order writes completed while the migration tried"
    assert max(latencies) < LOCK_TIMEOUT_MS / 1000 + 1.0


async def test_migration_runs_once_the_batch_ends(relay_dsn, relay_batch, migrations_copy) -> None:
    added = _outbox_migration(migrations_copy)
    release = asyncio.get_running_loop().call_later(0.1, lambda: asyncio.ensure_future(_end(relay_batch)))
    try:
        applied = await migrate.up(relay_dsn, migrations_copy, lock_timeout_ms=5000)
    finally:
        release.cancel()
    assert applied == [added.name]


async def _end(conn: asyncpg.Connection) -> None:
    await conn.execute("ROLLBACK")


async def test_cli_migrate_down_exits_1_with_one_line_naming_the_holder(relay_dsn, relay_batch) -> None:
    # undo down to 0002 (its down drops an outbox column), newest first: the first undo that
    # alters outbox_events (0008's, since events are timed at their write) waits for the relay
    blocked = next(m for m in reversed(migrate.load()) if m.version >= "0002" and "outbox_events" in m.down_sql)
    states = await migrate.status(relay_dsn)
    steps = sum(1 for s in states if s.state == "applied" and s.version >= "0002")
    result = await asyncio.to_thread(
        runner.invoke,
        app,
        ["migrate", "down", "--steps", str(steps), "--yes"],
        env={"UOOM_DATABASE_URL": relay_dsn, "UOOM_MIGRATE_LOCK_TIMEOUT_MS": "200"},
    )
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    error = result.stderr.strip().splitlines()[-1]  # after the list of what the undo would drop
    assert error.startswith(f"error: {blocked.path.name} down was rolled back: it could not lock"), error
    assert f"pid {relay_batch.get_server_pid()} (uoom-relay" in error and "UOOM_MIGRATE_LOCK_TIMEOUT_MS" in error


HOLDERS = """SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 'outbox_events' AND l.pid <> pg_backend_pid()"""


async def test_during_a_kafka_outage_the_relay_holds_no_outbox_rows_and_a_migration_runs(
    settings, relay_dsn, own_kafka, migrations_copy
) -> None:
    """Only the batch that met the outage holds rows (until its sends time out); the workers then
    wait for Kafka holding nothing, so a migration goes through mid-outage, and nothing is lost."""
    bootstrap = own_kafka.settings.kafka_bootstrap
    async with kafka_topics(bootstrap) as name, _connect(relay_dsn) as pool:
        relay = Relay(relay_settings(settings, relay_dsn, name, kafka_bootstrap=bootstrap, relay_batch_size=20))
        written = await write_events(pool, plan(orders=20, versions=2))
        async with running(relay):
            await until(lambda: _pending(pool, 0), 30)
            own_kafka.down(["kafka"])
            written += await write_events(pool, plan(orders=20, versions=2))
            await until(lambda: _held(pool, True), 10)  # a batch met the outage
            await until(lambda: _held(pool, False), 40)  # its sends timed out
            for _ in range(50):  # and no worker claims again while Kafka is gone (~10 s)
                assert await pool.fetchval(HOLDERS) == 0, "a relay worker holds outbox rows during the outage"
                await asyncio.sleep(0.2)
            added = _outbox_migration(migrations_copy)
            assert await migrate.up(relay_dsn, migrations_copy, lock_timeout_ms=LOCK_TIMEOUT_MS) == [added.name]
            await own_kafka.up(["kafka"])
            await until(lambda: _pending(pool, 0), 90)
        received = await read_topic(bootstrap, name, expect=len(written), timeout=60)
    assert {r.id for r in received} == {str(w.id) for w in written}
    assert_order_kept(written, received)


async def _held(pool: asyncpg.Pool, held: bool) -> bool:
    return (await pool.fetchval(HOLDERS) > 0) == held


async def _pending(pool: asyncpg.Pool, count: int) -> bool:
    return await pending(pool) == count
