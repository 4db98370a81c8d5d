"""Guards on what destroys data, against a real database: `migrate down`, `outbox prune` with no
retention, `keys revoke`, `seed demo` (`stack down`: tests/integration/test_stack.py).

Each refusal runs under CliRunner, whose stdin is not a terminal: what a script or cron sees.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from commands.main import app
from uoom import apikeys, demo, migrate

runner = CliRunner()


@pytest.fixture
async def migrated(scratch_dsn: str) -> str:
    await migrate.up(scratch_dsn)
    return scratch_dsn


def invoke(dsn: str, *args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), env={"UOOM_DATABASE_URL": dsn}, input=input)


async def fetch(dsn: str, sql: str, *params: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *params))
    finally:
        await conn.close()


async def execute(dsn: str, sql: str, *params: Any) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql, *params)
    finally:
        await conn.close()


def tables(dsn: str) -> set[str]:
    rows = asyncio.run(fetch(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    return {r["tablename"] for r in rows}


def outbox_event(dsn: str, *, published: bool) -> None:
    asyncio.run(execute(
        dsn,
        """INSERT INTO outbox_events (id, type, aggregate_id, aggregate_type, data, processed, published_at)
           VALUES ($1, 'order.created', $2, 'order', '{}', $3, CASE WHEN $3 THEN now() END)""",
        uuid.uuid4(), uuid.uuid4(), published,
    ))  # fmt: skip


@pytest.fixture
def answering(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal to ask on: the question is asked, the test's input answers it."""
    monkeypatch.setattr("commands._confirm.interactive", lambda: True)


# -- migrate down ---------------------------------------------------------------------------------


@pytest.fixture
def holding_data(migrated: str) -> str:
    """A migrated database with demo data (8 channels, 15 restaurants), one key, one unpublished event."""

    async def fill() -> None:
        conn = await asyncpg.connect(migrated)
        try:
            await demo.load(conn)
            await apikeys.create(conn, "ci")
        finally:
            await conn.close()

    asyncio.run(fill())
    outbox_event(migrated, published=False)
    return migrated


def test_migrate_down_refuses_without_yes_and_says_what_it_would_drop(holding_data: str) -> None:
    everything = str(len(migrate.load()))
    result = invoke(holding_data, "migrate", "down", "--steps", everything)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "drops table restaurants: 15 rows" in result.stderr
    assert "drops table channels: 8 rows" in result.stderr  # and 0004's channels.bundles: 8 rows more
    assert "drops table api_keys: 1 row\n" in result.stderr
    assert "drops table orders: empty" in result.stderr
    assert "loses 33 rows, 1 of them outbox events never published to Kafka" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: refused to undo {', '.join(m.path.name for m in reversed(migrate.load()))} and lose 33 rows "
        f"without --yes (no terminal to ask on): run `uoom migrate down --steps {everything} --yes`"
    )
    assert {"orders", "outbox_events", "api_keys"} <= tables(holding_data)


def test_migrate_down_dry_run_lists_the_rows_and_changes_nothing(holding_data: str) -> None:
    result = invoke(holding_data, "migrate", "down", "--steps", "99", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert set(plan) == {"dryRun", "migrations", "dropped", "rowsLost", "unpublishedEvents", "undone"}  # docs/cli.md
    assert all(set(d) == {"migration", "table", "column", "rows"} for d in plan["dropped"])
    first = migrate.load()[0].path.name
    assert plan["dryRun"] is True and plan["undone"] == []
    assert plan["migrations"][-1] == first
    assert {"migration": first, "table": "restaurants", "column": None, "rows": 15} in plan["dropped"]
    assert plan["rowsLost"] == 33 and plan["unpublishedEvents"] == 1
    assert {"orders", "outbox_events", "api_keys"} <= tables(holding_data)


def test_migrate_down_answered_no_changes_nothing(holding_data: str, answering: None) -> None:
    result = invoke(holding_data, "migrate", "down", "--steps", "99", input="n\n")
    assert result.exit_code == 1
    assert "and lose 33 rows? [y/N]" in result.stderr
    assert "nothing changed" in result.stderr
    assert "orders" in tables(holding_data)


def test_migrate_down_answered_yes_drops_the_tables(holding_data: str, answering: None) -> None:
    result = invoke(holding_data, "migrate", "down", "--steps", "99", input="y\n")
    assert result.exit_code == 0, result.stderr
    assert f"undone {migrate.load()[0].path.name}" in result.stderr
    assert tables(holding_data) == {"schema_migrations"}


def test_migrate_down_with_yes_still_lists_the_loss(holding_data: str) -> None:
    result = invoke(holding_data, "migrate", "down", "--steps", "99", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert "drops table restaurants: 15 rows" in result.stderr
    done = json.loads(result.stdout)
    assert done["undone"] == [m.path.name for m in reversed(migrate.load())] == done["migrations"]
    assert done["rowsLost"] == 33 and done["dryRun"] is False
    assert tables(holding_data) == {"schema_migrations"}


def test_migrate_down_of_empty_tables_still_asks_and_says_they_are_empty(migrated: str) -> None:
    refused = invoke(migrated, "migrate", "down", "--steps", "99")
    assert refused.exit_code == 2
    assert "drops no data (the tables are empty)" in refused.stderr
    assert "(its tables are empty) without --yes" in refused.stderr


def test_migrate_down_with_nothing_applied_has_nothing_to_undo(scratch_dsn: str) -> None:
    result = invoke(scratch_dsn, "migrate", "down")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == "nothing to undo"


# -- outbox prune -------------------------------------------------------------------------------


def test_prune_with_zero_retention_refuses_without_yes(migrated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    outbox_event(migrated, published=True)
    outbox_event(migrated, published=False)
    for args, env in ((["--older-than", "0"], None), (["--older-than", "-1h"], None), ([], "0")):
        if env is not None:
            monkeypatch.setenv("UOOM_OUTBOX_RETENTION", env)
        result = invoke(migrated, "outbox", "prune", *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert "keeps no published row, not even those published a moment ago" in result.stderr
        assert "refused to delete all 1 published outbox rows without --yes" in result.stderr
    assert len(asyncio.run(fetch(migrated, "SELECT id FROM outbox_events"))) == 2

    dry = invoke(migrated, "outbox", "prune", "--older-than", "0", "--dry-run", "--json")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["wouldDelete"] == 1

    done = invoke(migrated, "outbox", "prune", "--older-than", "0", "--yes", "--json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"deleted": 1, "wouldDelete": None, "olderThanSeconds": 0.0}
    left = asyncio.run(fetch(migrated, "SELECT processed FROM outbox_events"))
    assert [r["processed"] for r in left] == [False]  # unpublished: never deleted


def test_prune_with_a_positive_retention_does_not_ask(migrated: str) -> None:
    outbox_event(migrated, published=True)
    result = invoke(migrated, "outbox", "prune", "--older-than", "1h")
    assert result.exit_code == 0, result.stderr
    assert "deleted 0 published rows" in result.stderr


# -- keys revoke --------------------------------------------------------------------------------


def test_revoke_names_the_key_and_asks_first(migrated: str, answering: None) -> None:
    created = invoke(migrated, "keys", "create", "billing", "--json")
    prefix = json.loads(created.stdout)["key"][: len(apikeys.PREFIX) + 6]

    no = invoke(migrated, "keys", "revoke", "billing", input="n\n")
    assert no.exit_code == 1
    assert f"key 'billing' ({prefix}…), created " in no.stderr and "never used" in no.stderr
    assert "Revoke key 'billing'? [y/N]" in no.stderr
    revoked = asyncio.run(fetch(migrated, "SELECT revoked_at FROM api_keys WHERE name = 'billing'"))
    assert revoked[0]["revoked_at"] is None

    yes = invoke(migrated, "keys", "revoke", "billing", input="y\n")
    assert yes.exit_code == 0, yes.stderr
    assert "key 'billing' revoked" in yes.stderr


def test_revoke_without_a_terminal_needs_yes(migrated: str) -> None:
    invoke(migrated, "keys", "create", "ci")
    refused = invoke(migrated, "keys", "revoke", "ci")
    assert refused.exit_code == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: refused to revoke key 'ci' without --yes (no terminal to ask on): run `uoom keys revoke ci --yes`"
    )
    done = invoke(migrated, "keys", "revoke", "ci", "--yes", "--json")
    assert done.exit_code == 0 and json.loads(done.stdout) == {"revoked": "ci"}
    again = invoke(migrated, "keys", "revoke", "ci")  # nothing left to lose: no question
    assert again.exit_code == 1 and again.stderr.strip() == "error: key 'ci' is revoked already"
    unknown = invoke(migrated, "keys", "revoke", "nobody")
    assert unknown.exit_code == 1 and unknown.stderr.strip() == "error: no key named 'nobody'"


# -- seed demo ----------------------------------------------------------------------------------


def test_seed_demo_keeps_what_an_operator_changed(migrated: str) -> None:
    first = invoke(migrated, "seed", "demo", "--json")
    assert first.exit_code == 0, first.stderr
    seeded = json.loads(first.stdout)
    assert set(seeded) == {"channels", "restaurants", "restaurantIds"}  # docs/cli.md
    assert set(seeded["channels"]) == set(seeded["restaurants"]) == {"inserted", "kept", "changed"}
    assert len(seeded["channels"]["inserted"]) == 8 and seeded["channels"]["kept"] == []
    assert len(seeded["restaurants"]["inserted"]) == 15

    moved = str(demo.restaurants()[0][0])
    assert invoke(migrated, "channels", "set", "own-bikes", "capacity=5").exit_code == 0
    assert invoke(migrated, "channels", "disable", "crowd-gig").exit_code == 0
    asyncio.run(execute(migrated, "UPDATE restaurants SET latitude = 40.7 WHERE id = $1", uuid.UUID(moved)))
    asyncio.run(execute(migrated, "DELETE FROM channels WHERE id = 'partner-beta'"))

    again = invoke(migrated, "seed", "demo", "--json")
    assert again.exit_code == 0, again.stderr
    seeded = json.loads(again.stdout)
    assert seeded["channels"]["inserted"] == ["partner-beta"]
    assert len(seeded["channels"]["kept"]) == 7
    assert sorted(seeded["channels"]["changed"]) == ["crowd-gig", "own-bikes"]
    assert seeded["restaurants"] == {"inserted": [], "kept": [str(r[0]) for r in demo.restaurants()],
                                     "changed": [moved]}  # fmt: skip
    rows = asyncio.run(
        fetch(migrated, "SELECT id, capacity, enabled FROM channels WHERE id IN ('own-bikes', 'crowd-gig')")
    )
    assert {r["id"]: (r["capacity"], r["enabled"]) for r in rows} == {"own-bikes": (5, True), "crowd-gig": (200, False)}
    lat = asyncio.run(fetch(migrated, "SELECT latitude FROM restaurants WHERE id = $1", uuid.UUID(moved)))
    assert lat[0]["latitude"] == 40.7

    table = invoke(migrated, "seed", "demo")
    assert "channels: inserted 0, kept 8 existing (2 changed by an operator, left so: own-bikes, crowd-gig)" in (
        table.stderr
    )
