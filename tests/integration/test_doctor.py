"""`uoom doctor` against the real stack: a scratch database, topics and ports of each test's own,
so what it finds is what the test set up."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from commands.main import app
from tests.integration.relay_support import free_ports
from uoom import migrate

runner = CliRunner()
PARTITIONS = 2


@contextlib.asynccontextmanager
async def topics(bootstrap: str, partitions: int = PARTITIONS) -> AsyncIterator[str]:
    """A topic and its `.dlq`, both with `partitions`, deleted afterwards."""
    name = f"uoom-doctor-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in (name, f"{name}.dlq")])
        yield name
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([name, f"{name}.dlq"])
        await admin.close()


@pytest.fixture
async def platform(monkeypatch: pytest.MonkeyPatch, settings: Any, scratch_dsn: str) -> AsyncIterator[str]:
    """A healthy set-up of stores: a migrated scratch database, the test's own topics, no DAX, and
    daemon ports where nothing listens. Yields the database's DSN."""
    await migrate.up(scratch_dsn)
    async with topics(settings.kafka_bootstrap) as topic:
        port = free_ports(3)
        for name, value in {
            "UOOM_DATABASE_URL": scratch_dsn,
            "UOOM_KAFKA_TOPIC": topic,
            "UOOM_KAFKA_DLQ_TOPIC": f"{topic}.dlq",
            "UOOM_KAFKA_PARTITIONS": str(PARTITIONS),
            "DAX_ENDPOINT": "",
            "UOOM_API_PORT": str(port),
            "UOOM_OPTIMIZER_PORT": str(port + 1),
            "UOOM_OPTIMIZER_URL": "",
            "UOOM_RELAY_METRICS_PORT": str(port + 2),
        }.items():
            monkeypatch.setenv(name, value)
        yield scratch_dsn


def doctor(*args: str) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    result = runner.invoke(app, ["doctor", "--json", *args])
    document = json.loads(result.stdout)
    return result.exit_code, document, {c["name"]: c for c in document["checks"]}


def test_a_healthy_platform_passes_with_the_daemons_skipped(platform: str) -> None:
    code, document, rows = doctor("--skip-daemons")
    assert code == 0, document
    assert document["ok"] is True and document["failed"] == []
    assert {n: r["state"] for n, r in rows.items()} == {
        "postgres": "ok",
        "redis": "ok",
        "kafka": "ok",
        "dynamodb": "ok",
        "dax": "skip",
        "api": "skip",
        "optimizer": "skip",
        "relay": "skip",
        "outbox": "ok",
    }


def test_daemons_not_running_fail_with_uoom_up_as_the_fix(platform: str) -> None:
    code, document, rows = doctor()
    assert code == 1
    assert document["failed"] == ["api", "optimizer", "relay"]
    assert "`uoom up`" in rows["api"]["fix"] and "not answering" in rows["api"]["detail"]


def test_a_missing_table_fails_and_names_the_fix(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    monkeypatch.setenv("UOOM_DYNAMODB_TABLE", f"missing-{uuid.uuid4().hex[:8]}")
    code, document, rows = doctor("--skip-daemons")
    assert code == 1 and document["failed"] == ["dynamodb"]
    assert "does not exist" in rows["dynamodb"]["detail"] and "uoom migrate up" in rows["dynamodb"]["fix"]


def test_a_pending_migration_fails_and_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, platform: str, scratch_dsn: str
) -> None:
    # a database of its own with no migration applied
    monkeypatch.setenv("UOOM_DATABASE_URL", scratch_dsn.rsplit("/", 1)[0] + "/postgres")
    code, document, rows = doctor("--skip-daemons")
    assert code == 1 and "postgres" in document["failed"]
    assert "pending" in rows["postgres"]["detail"] and rows["postgres"]["fix"] == "run `uoom migrate up`"


def test_a_topic_that_is_gone_fails_and_names_the_fix(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    gone = f"uoom-gone-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("UOOM_KAFKA_TOPIC", gone)
    code, document, rows = doctor("--skip-daemons")
    assert code == 1 and document["failed"] == ["kafka"]
    assert gone in rows["kafka"]["detail"] and "uoom migrate up" in rows["kafka"]["fix"]


def test_topics_with_other_partitions_fail(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    monkeypatch.setenv("UOOM_KAFKA_PARTITIONS", str(PARTITIONS + 1))
    code, _, rows = doctor("--skip-daemons")
    assert code == 1 and rows["kafka"]["state"] == "fail" and "UOOM_KAFKA_PARTITIONS" in rows["kafka"]["fix"]


def test_outbox_lag_over_the_threshold_fails(platform: str) -> None:
    import asyncio

    import asyncpg

    async def an_old_unpublished_event() -> None:
        conn = await asyncpg.connect(platform)
        try:
            await conn.execute(
                """INSERT INTO outbox_events (id, type, aggregate_id, aggregate_type, aggregate_version, data,
                                              created_at)
                   VALUES ($1, 'order.created', $2, 'order', 1, '{}', now() - interval '10 minutes')""",
                uuid.uuid4(),
                uuid.uuid4(),
            )
        finally:
            await conn.close()

    asyncio.run(an_old_unpublished_event())
    code, _, rows = doctor("--skip-daemons", "--max-lag", "300")
    assert code == 1 and rows["outbox"]["state"] == "fail" and "uoom relay --check" in rows["outbox"]["fix"]
    assert doctor("--skip-daemons", "--max-lag", "3600")[0] == 0


def test_every_service_down_is_reported_within_seconds(monkeypatch: pytest.MonkeyPatch, stack: Any) -> None:
    closed = free_ports()
    for name, value in {
        "UOOM_DATABASE_URL": f"postgresql://u@127.0.0.1:{closed}/x",
        "UOOM_REDIS_URL": f"redis://127.0.0.1:{closed}/0",
        "UOOM_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed}",
        "DYNAMODB_ENDPOINT": f"http://127.0.0.1:{closed}",
        "DAX_ENDPOINT": "",
        "UOOM_API_PORT": str(closed),
        "UOOM_OPTIMIZER_PORT": str(closed),
        "UOOM_OPTIMIZER_URL": "",
        "UOOM_RELAY_METRICS_PORT": str(closed),
    }.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    code, document, rows = doctor()
    elapsed = time.monotonic() - started
    assert code == 1
    assert document["failed"] == ["postgres", "redis", "kafka", "dynamodb", "api", "optimizer", "relay"]
    assert rows["postgres"]["fix"] == "start it with `uoom stack up`"
    assert rows["outbox"]["state"] == "skip"
    assert elapsed < 8, elapsed


def test_the_json_has_the_documented_shape(platform: str) -> None:
    _, document, _ = doctor("--skip-daemons")
    assert list(document) == ["ok", "failed", "checks"]
    assert [list(c) for c in document["checks"]] == [["name", "state", "detail", "fix", "elapsedMs"]] * 9
    assert [c["name"] for c in document["checks"]] == [
        "postgres",
        "redis",
        "kafka",
        "dynamodb",
        "dax",
        "api",
        "optimizer",
        "relay",
        "outbox",
    ]
