"""`uoom channels` through the CLI, against real PostgreSQL and Redis (a scratch database)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from commands.main import app
from uoom import migrate

runner = CliRunner()
ADD = [
    "channels",
    "add",
    "partner-gamma",
    "--name",
    "Gamma",
    "--kind",
    "partner",
    "--capacity",
    "20",
    "--base-cost",
    "4.5",
    "--cost-per-km",
    "1.2",
    "--speed-kmh",
    "18",
    "--pickup-latency-min",
    "9",
    "--radius-km",
    "7",
    "--quality",
    "0.9",
]


@pytest.fixture
async def scratch_env(scratch_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    await migrate.up(scratch_dsn)
    monkeypatch.setenv("UOOM_DATABASE_URL", scratch_dsn)
    return scratch_dsn


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_add_list_set_disable_round_trip(scratch_env: str) -> None:
    added = invoke(*ADD, "--json")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["capacity"] == 20
    changed = invoke("channels", "set", "partner-gamma", "capacity=35", "quality=0.95", "--json")
    assert changed.exit_code == 0, changed.stderr
    assert (json.loads(changed.stdout)["capacity"], str(json.loads(changed.stdout)["quality"])) == (35, "0.950")
    assert invoke("channels", "disable", "partner-gamma").exit_code == 0
    listed = json.loads(invoke("channels", "list", "--json").stdout)
    assert "partner-gamma" not in [c["id"] for c in listed]
    everything = json.loads(invoke("channels", "list", "--all", "--json").stdout)
    assert [c["enabled"] for c in everything if c["id"] == "partner-gamma"] == [False]


def test_bad_input_is_one_line_and_exit_2(scratch_env: str) -> None:
    assert invoke(*ADD).exit_code == 0
    duplicate = invoke(*ADD)
    assert duplicate.exit_code == 2
    assert duplicate.stderr.strip() == (
        "error: channel 'partner-gamma' exists already; change it with `uoom channels set`"
    )
    bad_quality = invoke("channels", "set", "partner-gamma", "quality=1.5")
    assert bad_quality.exit_code == 2 and "quality must be within 0..1" in bad_quality.stderr
    unknown = invoke("channels", "set", "partner-gamma", "colour=red")
    assert unknown.exit_code == 2 and "unknown field(s) colour" in unknown.stderr
    missing = invoke("channels", "show", "nope")
    assert missing.exit_code == 1 and missing.stderr.strip() == "error: no channel 'nope'; see `uoom channels list`"


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["cost=abc"], "weight cost='abc' is not a number"),
        (["cost=-1", "time=1"], "weights must be finite numbers >= 0"),
        (["speed=1"], "unknown criteria ['speed']"),
        (["cost"], "'cost' is not name=value"),
    ],
)
def test_bad_weights_are_refused_with_exit_2(pairs: list[str], message: str) -> None:
    result = invoke("channels", "weights", "set", *pairs)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_weights_set_then_get_and_rank_follows(stack, scratch_env: str) -> None:
    assert invoke(*ADD).exit_code == 0
    assert invoke("channels", "weights", "set", "cost=1").exit_code == 0
    assert json.loads(invoke("channels", "weights", "get", "--json").stdout)["cost"] == 1.0
    ranked = json.loads(invoke("channels", "rank", "--json").stdout)
    assert [r["channelId"] for r in ranked] == ["partner-gamma"]
    invoke("channels", "weights", "set", "cost=0.5", "time=0.3", "quality=0.2")


def test_an_unmigrated_database_says_run_migrate_up(scratch_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_DATABASE_URL", scratch_dsn)  # created, never migrated
    result = invoke("channels", "list")
    assert result.exit_code == 1
    assert result.stdout == ""
    database = scratch_dsn.rsplit("/", 1)[1]
    assert result.stderr.strip() == (
        f"error: the database at postgresql://127.0.0.1:5432/{database} is not migrated "
        '(relation "channels" does not exist): run `uoom migrate up`'
    )


def test_list_prints_a_table_on_stdout_and_camel_case_json(scratch_env: str) -> None:
    assert invoke(*ADD).exit_code == 0
    table = invoke("channels", "list")
    assert table.exit_code == 0 and table.stderr == ""
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["ID", "KIND", "CAPACITY"]
    assert [r.split()[:3] for r in rows] == [["partner-gamma", "partner", "20"]]
    (channel,) = json.loads(invoke("channels", "list", "--json").stdout)
    assert {"baseCost", "costPerKm", "speedKmh", "pickupLatencyMin", "radiusKm"} <= set(channel)


def test_bundles_is_set_by_add_and_set_shown_by_list_and_loaded_with_the_registry(scratch_env: str) -> None:
    import asyncio

    import asyncpg

    from uoom import channels

    added = invoke(*ADD, "--bundles", "--json")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["bundles"] is True
    table = invoke("channels", "list")
    assert table.stdout.splitlines()[0].split()[-2:] == ["BUNDLES", "ENABLED"]
    off = invoke("channels", "set", "partner-gamma", "--no-bundles", "capacity=30", "--json")
    assert off.exit_code == 0, off.stderr
    assert (json.loads(off.stdout)["bundles"], json.loads(off.stdout)["capacity"]) == (False, 30)
    assert json.loads(invoke("channels", "set", "partner-gamma", "bundles=true", "--json").stdout)["bundles"] is True

    async def registry() -> list[channels.Channel]:
        conn = await asyncpg.connect(scratch_env)
        try:
            return await channels.enabled_channels(conn)
        finally:
            await conn.close()

    assert [(c.id, c.bundles) for c in asyncio.run(registry())] == [("partner-gamma", True)]
    nothing = invoke("channels", "set", "partner-gamma")
    assert nothing.exit_code == 2 and nothing.stderr.startswith("error: nothing to change")
    assert len(nothing.stderr.strip().splitlines()) == 1
