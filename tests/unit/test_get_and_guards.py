"""`uoom --get PATH` (commands/_output.py: pick, printed as jq -r does), what a migration's down
section destroys (uoom/migrate.py: destroys), and `uoom metrics` input checks: pure, no service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from commands._output import _bare, pick
from commands.main import app
from uoom.migrate import destroys, load

runner = CliRunner()
DOCUMENT = {
    "status": "ok",
    "latency": {"create.assign": {"p99": 3.5}, "gcPause.gen0": {"p99": None}, "POST /api/orders": {"max": 12}},
    "checks": [{"name": "postgres", "state": "ok"}, {"name": "kafka", "state": "fail", "fix": "run it"}],
    "api": {"assignment": {"sources": {"optimizer": 3}}},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("status", "ok"),
        ("latency.create.assign.p99", 3.5),  # a key holding a dot
        ("latency.gcPause.gen0.p99", None),
        ("latency.POST /api/orders.max", 12),
        ("checks.#", 2),
        ("checks.-1.name", "kafka"),
        ("checks.name=kafka.fix", "run it"),
        ("checks.name=redis.state", None),
        ("checks.7", None),
        ("api.assignment.sources", {"optimizer": 3}),
        ("no.such.thing", None),
        ("status.deeper", None),
    ],
)
def test_pick_follows_dotted_paths_like_jq(path: str, value: object) -> None:
    assert pick(DOCUMENT, path) == value


def test_values_print_as_jq_raw_output_does() -> None:
    moment = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    ident = uuid.UUID(int=7)
    printed = [_bare(v) for v in ("ok", 1.5, None, True, {"a": 1}, [1, 2], moment, ident)]
    assert printed == ["ok", "1.5", "null", "true", '{"a":1}', "[1,2]", "2026-11-30T05:00:00+00:00", str(ident)]


def test_get_prints_only_the_values_of_a_json_document() -> None:
    result = runner.invoke(
        app, ["--get", "urls.redis", "--get", "kafkaTopic", "--get", "nothing", "config", "--json"],
        env={"UOOM_REDIS_URL": "redis://cache:6379/2"},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["redis://cache:6379/2", "uoom.order-events", "null"]


def test_down_sections_name_the_tables_and_columns_they_destroy() -> None:
    sql = """-- DROP TABLE in_a_comment;
    DROP INDEX orders_notes;
    ALTER TABLE orders DROP COLUMN notes;
    ALTER TABLE orders DROP CONSTRAINT orders_fk;
    TRUNCATE a, b RESTART IDENTITY CASCADE;
    drop table if exists z cascade;"""
    assert destroys(sql) == [("orders", "notes"), ("a", None), ("b", None), ("z", None)]
    first = load()[0]
    assert first.name == "orders_and_outbox"
    assert {"orders", "outbox_events", "api_keys", "channels", "restaurants"} <= {
        t for t, _ in destroys(first.down_sql)
    }


def test_metrics_of_an_unknown_service_is_a_usage_error() -> None:
    result = runner.invoke(app, ["metrics", "database"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: unknown service 'database'; known: api, optimizer, relay"


def test_metrics_of_a_daemon_not_running_is_exit_1_in_one_line() -> None:
    result = runner.invoke(app, ["metrics", "relay", "--url", "http://127.0.0.1:9", "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().startswith("error: relay not answering at http://127.0.0.1:9/api/v1/metrics (")
