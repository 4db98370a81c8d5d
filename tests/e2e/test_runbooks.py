"""Every runbook (runbooks/*.sh) against the real stack: the fault it diagnoses induced, then the
runbook run as an operator runs it (bash, `uoom` on the PATH, settings in UOOM_* variables) finds
it, by its exit code and the line it prints; and on a healthy setup it says so (exit 0).

Each test has a database, Kafka topics and ports of its own; every daemon started here is stopped
by the fixture or context manager that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import create_key, free_port, load_demo, order_body, run_daemon
from tests.e2e.metrics_shape import assert_metrics_document
from tests.integration.relay_support import db, kafka_topics, write_events
from uoom import migrate

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class Platform:
    """A scratch platform: its database (migrated, demo data, an API key), its topics, its ports,
    and the environment every daemon and runbook of the test runs with."""

    dsn: str
    topic: str
    key: str
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def runbook(self, name: str, **more: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", str(REPO / "runbooks" / name)],
            env={**self.env, **more},
            capture_output=True,
            text=True,
            timeout=120,
        )
        print(f"--- {name} exit {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def uoom(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "uoom"), *args], env=self.env, capture_output=True, text=True, timeout=60)

    @contextlib.contextmanager
    def relay(self, **more: str) -> Iterator[str]:
        """`uoom relay` on this platform; yields its metrics URL."""
        env = {**self.env, **more}
        url = f"http://127.0.0.1:{env['UOOM_RELAY_METRICS_PORT']}/api/v1/metrics"
        with run_daemon(self.log_dir / f"relay-{free_port()}.log", ["relay"], env, url):
            yield url

    @contextlib.contextmanager
    def api(self, **more: str) -> Iterator[str]:
        """`uoom serve` on this platform's API port; yields its URL."""
        env = {**self.env, **more}
        url = f"http://127.0.0.1:{env['UOOM_API_PORT']}"
        with run_daemon(self.log_dir / f"api-{free_port()}.log", ["serve"], env, f"{url}/healthz"):
            yield url

    def orders(self, api_url: str, count: int, reads: int = 0) -> list[str]:
        """Create `count` orders through the API and read each one's status `reads` times."""
        headers = {"Authorization": f"Bearer {self.key}"}
        ids = []
        with httpx.Client(base_url=api_url, headers=headers, timeout=10) as client:
            for _ in range(count):
                created = client.post("/api/orders", json=order_body())
                if created.status_code == 201:
                    ids.append(created.json()["id"])
            for _ in range(reads):
                for order in ids:
                    assert client.get(f"/api/orders/{order}/status").status_code == 200
        return ids


@pytest.fixture
async def platform(stack: Any, settings: Any, tmp_path: Path) -> AsyncIterator[Platform]:
    base = settings.database_url.get_secret_value().rsplit("/", 1)[0]
    name = f"runbook_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(f"{base}/postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = f"{base}/{name}"
    try:
        await migrate.up(dsn)
        await load_demo(dsn)
        _, key = await create_key(settings, "runbook", dsn)
        async with kafka_topics(settings.kafka_bootstrap) as topic:
            env = dict(os.environ)
            env.update(
                PATH=f"{BIN}:{env.get('PATH', '')}",
                UOOM=str(BIN / "uoom"),
                UOOM_DATABASE_URL=dsn,
                UOOM_KAFKA_TOPIC=topic,
                UOOM_KAFKA_DLQ_TOPIC=f"{topic}.dlq",
                UOOM_API_PORT=str(free_port()),
                UOOM_RELAY_METRICS_PORT=str(free_port()),
                UOOM_OPTIMIZER_PORT=str(free_port()),  # nothing listens there unless a test starts it
                UOOM_RELAY_PROJECTOR_GROUP=f"projector-{topic}",
                UOOM_RELAY_PRUNE_INTERVAL="0",
                UOOM_RELAY_RETRY_BASE_SECONDS="0.1",
                UOOM_DISPATCH_INTERVAL="3600",
                UOOM_API_WORKERS="1",
                PYTHONUNBUFFERED="1",
            )
            yield Platform(dsn, topic, key, tmp_path, env)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def until(probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await probe()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)
    return value


async def relay_status(url: str, *path: str) -> Any:
    async with httpx.AsyncClient(timeout=5) as client:
        value = (await client.get(url)).json()
    for key in path:
        value = value[key]
    return value


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


# -- event delays ---------------------------------------------------------------------------------


async def test_event_delays_finds_the_stopped_relay_and_the_growing_lag(platform: Platform) -> None:
    async with db(platform.dsn) as pool:
        await write_events(pool, [(uuid.uuid4(), 1) for _ in range(3)])
    await asyncio.sleep(1.5)  # no relay: the lag grows past the runbook's 1 s

    stopped = platform.runbook("event-delays.sh", RUNBOOK_MAX_LAG_S="1")
    assert stopped.returncode == 1
    assert any(line.startswith("FOUND: outbox lag ") and "is over 1 s: 3 event(s) not yet on Kafka" in line
               for line in lines(stopped))  # fmt: skip
    relay_url = f"http://127.0.0.1:{platform.env['UOOM_RELAY_METRICS_PORT']}"
    assert f"FOUND: the relay is not answering at {relay_url}: nothing publishes the outbox" in lines(stopped)
    assert lines(stopped)[-1] == "problems found: 2"

    with platform.relay() as url:
        await until(lambda: _equals(relay_status(url, "status"), "ok"), 30)
        await until(lambda: _outbox_empty(platform.dsn), 30)
        await until(lambda: _equals(relay_status(url, "relay", "projector", "running"), True), 30)
        healthy = platform.runbook("event-delays.sh", RUNBOOK_MAX_LAG_S="1")
    assert healthy.returncode == 0, healthy.stdout
    assert lines(healthy)[-1] == "healthy: events leave the outbox within 1 s"


async def _outbox_empty(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox_events WHERE NOT processed")) == 0
    finally:
        await conn.close()


async def _equals(value: Any, wanted: Any) -> bool:
    return bool(await value == wanted)


# -- dead letters ---------------------------------------------------------------------------------


async def test_dead_letters_finds_a_poison_event(platform: Platform, settings: Any) -> None:
    healthy = platform.runbook("dead-letters.sh")
    assert healthy.returncode == 0, healthy.stdout
    assert lines(healthy) == ["ok: 0 open dead letter(s) (max 0); 0 in all, the rest replayed",
                              "healthy: no dead letter waits"]  # fmt: skip

    # A topic whose broker refuses records stamped more than a minute ahead: a real poison.
    async with kafka_topics(settings.kafka_bootstrap, **{"message.timestamp.after.max.ms": "60000"}) as strict:
        topics = {"UOOM_KAFKA_TOPIC": strict, "UOOM_KAFKA_DLQ_TOPIC": f"{strict}.dlq"}
        with platform.relay(**topics, UOOM_RELAY_PROJECTOR="false"):
            async with db(platform.dsn) as pool:
                [poison] = await write_events(
                    pool, [(uuid.uuid4(), 1)], created_at=datetime.now(UTC) + timedelta(days=1)
                )
                await until(lambda: _dead(pool), 30)
            found = platform.runbook("dead-letters.sh", **topics)
    assert found.returncode == 1
    assert "FOUND: 1 dead letter(s) not replayed (max 0)" in lines(found)
    assert any(line.startswith(f"newest: {poison.id} (order.status_changed), died ") for line in lines(found))
    assert any(line.startswith("FOUND: Kafka answers, yet refuses this event itself (") for line in lines(found))
    assert (
        f"NEXT: uoom dlq show {poison.id}; fix the topic's config or the producer, then uoom dlq replay {poison.id}"
        in (lines(found))
    )


async def _dead(pool: Any) -> bool:
    return int(await pool.fetchval("SELECT count(*) FROM dead_letters")) == 1


# -- stale read model -----------------------------------------------------------------------------


async def test_stale_read_model_finds_the_projector_missing(platform: Platform) -> None:
    relay_url = f"http://127.0.0.1:{platform.env['UOOM_RELAY_METRICS_PORT']}"
    down = platform.runbook("stale-read-model.sh")
    assert down.returncode == 1
    assert lines(down)[0] == (f"FOUND: the relay is not answering at {relay_url}: the projector runs inside it, "
                              "nothing updates the read model")  # fmt: skip

    with platform.relay(UOOM_RELAY_PROJECTOR="false"):
        without = platform.runbook("stale-read-model.sh")
    assert without.returncode == 1
    assert f"FOUND: the relay at {relay_url} runs without its read-model projector" in lines(without)
    assert (
        "NEXT: restart the relay with its projector: UOOM_RELAY_PROJECTOR=true (the default), without --no-projector"
        in (lines(without))
    )

    with platform.relay() as url:
        await until(lambda: _equals(relay_status(url, "relay", "projector", "running"), True), 30)
        healthy = platform.runbook("stale-read-model.sh")
    assert healthy.returncode == 0, healthy.stdout
    assert lines(healthy)[-1] == "healthy: the read model follows the events"


# -- optimizer fallback ---------------------------------------------------------------------------


def test_optimizer_fallback_finds_the_optimizer_missing(platform: Platform) -> None:
    optimizer_url = f"http://127.0.0.1:{platform.env['UOOM_OPTIMIZER_PORT']}"
    with platform.api() as api:
        assert len(platform.orders(api, 3)) == 3
        found = platform.runbook("optimizer-fallback.sh")
        document = platform.uoom("metrics", "api", "--json")
        slow = platform.uoom("metrics", "api", "--max-p99", "0")
    assert document.returncode == 0, document.stderr
    assert_metrics_document(json.loads(document.stdout), "api", {"postgres", "redis", "dynamodb", "kafka"})
    assert slow.returncode == 1
    assert any(line.startswith("POST /api/orders P99 ") and line.endswith("ms is over 0 ms (3 in the last 60 s)")
               for line in slow.stderr.splitlines())  # fmt: skip
    assert found.returncode == 1
    assert lines(found)[0].startswith("FOUND: 100% of the API's orders were not assigned by the optimizer (max 5%)")
    assert f"FOUND: the optimizer is not answering at {optimizer_url}" in lines(found)

    port = platform.env["UOOM_OPTIMIZER_PORT"]
    with (
        run_daemon(platform.log_dir / "optimizer.log", ["optimizer", "--port", port], platform.env,
                   f"{optimizer_url}/healthz"),
        platform.api() as api,
    ):  # fmt: skip
        assert len(platform.orders(api, 3)) == 3
        healthy = platform.runbook("optimizer-fallback.sh")
    assert healthy.returncode == 0, healthy.stdout
    assert lines(healthy)[-1] == "healthy: orders are assigned by the optimizer"


# -- high P99 latency -----------------------------------------------------------------------------


def test_high_p99_latency_finds_the_slow_route_and_the_optimizer_call(platform: Platform, proxy_factory: Any) -> None:
    # two shared cores: the event loop's lag runs to tens of ms here, whatever the API does
    thresholds = {"RUNBOOK_MAX_P99_MS": "250", "RUNBOOK_MAX_LOOP_LAG_MS": "200"}
    with platform.api() as api:  # the optimizer refuses at once: the fallback is quick
        platform.orders(api, 3, reads=5)
        healthy = platform.runbook("high-p99-latency.sh", **thresholds)
    assert healthy.returncode == 0, healthy.stdout
    assert lines(healthy)[-1] == "healthy: the API's P99 is under 250 ms"

    hanging = proxy_factory(("127.0.0.1", 9))
    hanging.freeze()  # the optimizer accepts the connection and never answers
    slow = {"UOOM_OPTIMIZER_URL": f"http://{hanging.address}", "UOOM_OPTIMIZER_TIMEOUT_MS": "600"}
    with platform.api(**slow) as api:
        platform.orders(api, 3)
        found = platform.runbook("high-p99-latency.sh", **thresholds)
    assert found.returncode == 1
    assert any(line.startswith("FOUND: POST /api/orders P99 ") and "ms is over 250 ms (3 in the last 60 s)" in line
               for line in lines(found))  # fmt: skip
    assert any(line.startswith("FOUND: choosing a channel (create.assign) P99 ") for line in lines(found))
    assert "NEXT: runbooks/optimizer-fallback.sh" in lines(found)


# -- cache misses ---------------------------------------------------------------------------------


def test_cache_misses_finds_the_read_model_table_missing(platform: Platform, dynamodb_server: Any) -> None:
    with platform.api() as api:
        platform.orders(api, 2, reads=5)
        healthy = platform.runbook("cache-misses.sh")
    assert healthy.returncode == 0, healthy.stdout
    assert lines(healthy)[-1] == "healthy: status reads are answered by the read model"

    dynamodb_server.start()  # a DynamoDB without the read model's table
    empty = {"DYNAMODB_ENDPOINT": dynamodb_server.endpoint, "UOOM_STATUS_CACHE_TTL_MS": "0"}
    with platform.api(**empty) as api:
        platform.orders(api, 2, reads=5)
        found = platform.runbook("cache-misses.sh", **empty)
    assert found.returncode == 1
    assert any(
        line.startswith("FOUND: read-model hit rate 0.0 is under 0.9: reads by source ") for line in lines(found)
    )
    assert "FOUND: DynamoDB: table uoom-order-status does not exist" in lines(found)
    assert "NEXT: run `uoom migrate up` (it creates it)" in lines(found)


# -- write timeouts -------------------------------------------------------------------------------


def test_write_timeouts_finds_postgresql_hanging_for_the_api(platform: Platform, proxy_factory: Any) -> None:
    postgres = proxy_factory(("127.0.0.1", 5432))
    through = {"UOOM_DATABASE_URL": platform.dsn.replace("127.0.0.1:5432", postgres.address),
               "UOOM_API_REQUEST_TIMEOUT_MS": "500"}  # fmt: skip
    with platform.api(**through) as api:
        platform.orders(api, 2)
        healthy = platform.runbook("write-timeouts.sh", UOOM_API_REQUEST_TIMEOUT_MS="500")
        assert healthy.returncode == 0, healthy.stdout
        assert lines(healthy)[-1] == "healthy: writes finish well within 500 ms"

        postgres.freeze()  # PostgreSQL hangs for the API: connections open, no answer
        assert platform.orders(api, 2) == []  # 503 after 500 ms
        found = platform.runbook("write-timeouts.sh", UOOM_API_REQUEST_TIMEOUT_MS="500")
    assert found.returncode == 1
    assert any(line.startswith("FOUND: writes took up to ") and "at the API's timeout of 500 ms (503)" in line
               for line in lines(found))  # fmt: skip
    assert any(line.startswith("FOUND: the API cannot reach PostgreSQL (") for line in lines(found))
    assert any(line.startswith("NEXT: PostgreSQL answers this machine (") for line in lines(found))
