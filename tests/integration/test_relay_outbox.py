"""`uoom outbox status|prune` and the relay's own pruning, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import asyncpg
from typer.testing import CliRunner

from commands.main import app
from daemons.relay import Relay
from tests.integration.relay_support import relay_dsn, relay_settings, running, until
from uoom.stores.outbox import prune

__all__ = ["relay_dsn"]  # fixtures
runner = CliRunner()


async def _insert(dsn: str, rows: list[tuple[str, str | None, bool, int, str]]) -> list[uuid.UUID]:
    """(created ago, published ago or None, processed, attempts, next attempt from now) per row."""
    conn = await asyncpg.connect(dsn)
    ids = []
    try:
        for created, published, processed, attempts, next_at in rows:
            ids.append(uuid.uuid4())
            await conn.execute(
                """INSERT INTO outbox_events (id, type, aggregate_id, aggregate_type, data, created_at,
                                              published_at, processed, attempts, next_attempt_at)
                   VALUES ($1, 'order.created', $2, 'order', '{}', now() - $3::text::interval,
                           now() - $4::text::interval, $5, $6, now() + $7::text::interval)""",
                ids[-1],
                uuid.uuid4(),
                created,
                published,
                processed,
                attempts,
                next_at,
            )
    finally:
        await conn.close()
    return ids


async def _ids(dsn: str) -> set[uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r["id"] for r in await conn.fetch("SELECT id FROM outbox_events")}
    finally:
        await conn.close()


def _outbox(dsn: str, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["outbox", *args], env={"UOOM_DATABASE_URL": dsn})


def test_prune_deletes_only_published_rows_older_than_the_retention(relay_dsn) -> None:
    old, recent, unpublished, edge = asyncio.run(
        _insert(
            relay_dsn,
            [
                ("9 days", "8 days", True, 1, "0"),
                ("2 days", "1 day", True, 1, "0"),
                ("30 days", None, False, 2, "0"),  # never published: kept however old
                ("7 days", "6 days 23 hours", True, 1, "0"),
            ],
        )
    )
    dry = _outbox(relay_dsn, "prune", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["wouldDelete"] == 1
    assert asyncio.run(_ids(relay_dsn)) == {old, recent, unpublished, edge}

    done = _outbox(relay_dsn, "prune", "--json")  # default retention: 7 days
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["deleted"] == 1
    assert asyncio.run(_ids(relay_dsn)) == {recent, unpublished, edge}

    shorter = _outbox(relay_dsn, "prune", "--older-than", "12h")
    assert shorter.exit_code == 0 and shorter.stdout == ""
    assert "deleted 2 published rows" in shorter.stderr
    assert asyncio.run(_ids(relay_dsn)) == {unpublished}

    bad = _outbox(relay_dsn, "prune", "--older-than", "soon")
    assert bad.exit_code == 2 and "--older-than 'soon'" in bad.stderr


async def test_prune_works_in_batches(relay_dsn) -> None:
    await _insert(relay_dsn, [("10 days", "9 days", True, 1, "0")] * 2500)
    conn = await asyncpg.connect(relay_dsn)
    try:
        assert await prune(conn, timedelta(days=7), batch_size=1000) == 2500
    finally:
        await conn.close()
    assert await _ids(relay_dsn) == set()


async def test_relay_prunes_periodically(settings, relay_dsn) -> None:
    [old] = await _insert(relay_dsn, [("10 days", "9 days", True, 1, "0")])
    [kept] = await _insert(relay_dsn, [("1 hour", "1 hour", True, 1, "0")])
    relay = Relay(relay_settings(settings, relay_dsn, "unused-topic", relay_prune_interval=0.2))
    async with running(relay):

        async def pruned() -> bool:
            return await _ids(relay_dsn) == {kept}

        await until(pruned, 10)
    assert old not in await _ids(relay_dsn)


def test_outbox_status_shows_backlog_lag_backoff_and_dead_letters(relay_dsn) -> None:
    asyncio.run(
        _insert(
            relay_dsn,
            [
                ("2 minutes", None, False, 0, "0"),  # pending, the oldest: lag about 120 s
                ("1 minute", None, False, 1, "1 hour"),  # failed once, in backoff
                ("1 minute", None, False, 2, "-1 second"),  # failed twice, due again
                ("1 day", "1 day", True, 1, "0"),  # published: not counted
            ],
        )
    )

    async def dead_letter() -> None:
        conn = await asyncpg.connect(relay_dsn)
        try:
            await conn.execute(
                """INSERT INTO dead_letters (id, event_type, aggregate_id, aggregate_type, aggregate_version,
                                             data, attempts, last_error, created_at)
                   VALUES ($1, 'order.created', $2, 'order', 1, '{}', 4, 'boom', now())""",
                uuid.uuid4(),
                uuid.uuid4(),
            )
        finally:
            await conn.close()

    asyncio.run(dead_letter())
    result = _outbox(relay_dsn, "status", "--json")
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert {k: status[k] for k in ("pending", "retrying", "inBackoff", "deadLetters", "deadLettersOpen")} == {
        "pending": 3,
        "retrying": 2,
        "inBackoff": 1,
        "deadLetters": 1,
        "deadLettersOpen": 1,
    }
    assert 119 <= status["lagSeconds"] < 180

    lagging = _outbox(relay_dsn, "status", "--max-lag", "60")
    assert lagging.exit_code == 1
    # the table is the result (stdout), the hint goes to stderr
    assert "is `uoom relay` running?" in lagging.stderr and "is `uoom relay` running?" not in lagging.stdout
    assert "PENDING" in lagging.stdout
    assert _outbox(relay_dsn, "status", "--max-lag", "600").exit_code == 0
