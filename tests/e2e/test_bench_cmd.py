"""`uoom bench` as an operator runs it: a real `uoom serve` and `uoom relay` (with its projector)
on a database and Kafka topic of the test's own, the command as a process, its books checked,
and books that must not hold (no relay; rows deleted, versions moved, events forged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from tests.e2e.conftest import REPO, create_key, free_port, load_demo, run_api, run_daemon
from tests.integration.relay_support import relay_dsn, topic
from uoom.books import audit
from uoom.config import Settings

__all__ = ["relay_dsn", "topic"]  # fixtures


@dataclass
class Platform:
    env: dict[str, str]  # what the bench command runs with: the API's URL, the test's database and topic
    key: str
    settings: Settings


@pytest.fixture
async def bench_env(relay_dsn: str, topic: str, settings: Settings) -> tuple[dict[str, str], str, Settings]:
    await load_demo(relay_dsn)
    _, key = await create_key(settings, "bench", relay_dsn)
    env = dict(os.environ, UOOM_DATABASE_URL=relay_dsn, UOOM_KAFKA_TOPIC=topic, UOOM_KAFKA_DLQ_TOPIC=f"{topic}.dlq",
               UOOM_RELAY_PROJECTOR_GROUP=f"projector-{topic}", UOOM_RELAY_METRICS_PORT=str(free_port()),
               UOOM_RELAY_POLL_INTERVAL="1", UOOM_RELAY_PRUNE_INTERVAL="0",
               UOOM_API_RATE_LIMIT_PER_SECOND="100000")  # fmt: skip
    bench_settings = settings.model_copy(update={"database_url": SecretStr(relay_dsn), "kafka_topic": topic})
    return env, key, bench_settings


@pytest.fixture
def platform(bench_env: tuple[dict[str, str], str, Settings], tmp_path: Path) -> Iterator[Platform]:
    env, key, bench_settings = bench_env
    relay_url = f"http://127.0.0.1:{env['UOOM_RELAY_METRICS_PORT']}/api/v1/metrics"
    # the API first: its start-up is the slow one on a busy machine, and it should not share it
    with run_api(tmp_path, "bench", **env) as api, run_daemon(tmp_path / "relay.log", ["relay"], env, relay_url):
        yield Platform({**env, "UOOM_API_URL": api.url}, key, bench_settings)


def uoom_bench(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commands", "bench", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)  # fmt: skip


async def test_bench_books_hold_and_the_audit_finds_what_was_broken(platform: Platform, tmp_path: Path) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    report_file = tmp_path / "report.json"
    result = uoom_bench(platform.env, "orders", "--rate", "20", "--duration", "3", "--api-key", platform.key,
                        "--json", str(report_file))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_file.read_text())
    (run,) = report["runs"]
    # every 201 is audited (on a busy machine a few creates may time out: a 503, not in the books)
    created = f"books hold for {run['ok']} orders (checked: postgres, read model, kafka"
    assert run["ok"] > 0 and created in result.stdout, result.stdout
    assert set(report) == {"command", "scenario", "target", "local", "rate", "duration", "when", "runs", "cpuCores",
                           "machine", "versions", "books"}  # fmt: skip
    assert report["command"].startswith("uoom bench orders --rate 20 --duration 3 --api-key '********'")
    assert platform.key not in result.stdout + result.stderr + report_file.read_text()
    assert report["target"] == platform.env["UOOM_API_URL"] and report["local"] is True
    assert set(run) == {"name", "rate", "seconds", "sent", "ok", "errors", "lateStarts", "generatorSaturated",
                        "achievedRate", "latencyMs"}  # fmt: skip
    assert run["sent"] == 60 and run["ok"] + sum(run["errors"].values()) == 60, run
    latency = run["latencyMs"]
    assert set(latency) == {"p50", "p90", "p99", "p99.9", "max"}
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99.9"] <= latency["max"] * 1.001
    assert {"postgres", "kafka", "redis", "dynamodb", "bench client"} <= set(report["cpuCores"])
    assert any(name.startswith("api ") for name in report["cpuCores"]), report["cpuCores"]
    assert {"cpus", "cpuModel", "memoryGb"} <= set(report["machine"])
    assert report["versions"]["postgres"].startswith("PostgreSQL") and "uoom" in report["versions"]
    books = report["books"]
    assert books["ok"] and books["orders"] == run["ok"] and books["checked"] == ["postgres", "read model", "kafka"]
    assert books["unchecked"] == {} and books["missingInPostgres"] == [] and books["missingEvents"] == []

    # mixed, on the same platform: reads the status of orders it created first, beside creates
    result = uoom_bench(platform.env, "mixed", "--rate", "20", "--duration", "2", "--orders", "10",
                        "--status-share", "0.5", "--api-key", platform.key)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "create POST /api/orders" in result.stdout and "status GET /api/orders/{id}/status" in result.stdout
    assert "books hold for " in result.stdout, result.stdout

    # then the books that held, broken on purpose in each way the audit names
    conn = await asyncpg.connect(platform.settings.database_url.get_secret_value())
    try:
        ids = [r["id"] for r in await conn.fetch("SELECT id::text AS id FROM orders ORDER BY id")]
        deleted, moved, forged_dup, forged_order = ids[:4]
        await conn.execute("DELETE FROM outbox_events WHERE aggregate_id = $1::uuid", deleted)
        await conn.execute("DELETE FROM orders WHERE id = $1::uuid", deleted)
        await conn.execute("UPDATE orders SET version = version + 1 WHERE id = $1::uuid", moved)
    finally:
        await conn.close()
    producer = AIOKafkaProducer(bootstrap_servers=platform.settings.kafka_bootstrap)
    await producer.start()
    try:  # the same version under another event id; then an older version after a newer one
        for order_id, versions in ((forged_dup, [1]), (forged_order, [3, 2])):
            for version in versions:
                event = {"id": str(uuid.uuid4()), "type": "order.status_changed", "aggregateId": order_id,
                         "version": version, "data": {}}  # fmt: skip
                await producer.send_and_wait(platform.settings.kafka_topic, orjson.dumps(event), key=order_id.encode())
    finally:
        await producer.stop()
    never_created = str(uuid.uuid4())
    books = await audit(platform.settings, [*ids, never_created], since=since, settle_s=10)
    assert not books.ok and not books.holds
    assert books.missing_in_postgres == sorted([deleted, never_created])
    assert books.missing_in_read_model == [never_created]
    assert books.stale_in_read_model == [moved]
    assert books.missing_events == [never_created]
    assert books.conflicting_duplicates == [forged_dup]
    assert books.out_of_order == [forged_order]
    assert any(line.startswith("1 stale in the read model") for line in books.lines())


async def test_bench_fails_when_events_never_reach_kafka(
    bench_env: tuple[dict[str, str], str, Settings], tmp_path: Path
) -> None:
    """No relay: every order is in PostgreSQL, none on Kafka: the books must not hold, exit 1, and
    the report names what is missing."""
    env, key, _ = bench_env
    with run_api(tmp_path, "norelay", **env) as api:
        result = uoom_bench({**env, "UOOM_API_URL": api.url}, "orders", "--rate", "10", "--duration", "1",
                            "--settle", "2", "--api-key", key)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "books do NOT hold for " in result.stdout, result.stdout
    assert " without order.created on Kafka: " in result.stdout, result.stdout
    assert "missing in PostgreSQL" not in result.stdout


async def test_the_audit_says_which_parts_it_could_not_check(settings: Settings, stack: object) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    down = settings.model_copy(update={"kafka_bootstrap": nowhere, "dynamodb_endpoint": f"http://{nowhere}"})
    books = await audit(down, [str(uuid.uuid4())], settle_s=1)
    assert books.checked == ("postgres",) and set(books.unchecked) == {"read model", "kafka"}
    assert not books.ok and not books.holds  # the id is missing in PostgreSQL, which was checked
    assert any(line.startswith("not checked: kafka") for line in books.lines())
