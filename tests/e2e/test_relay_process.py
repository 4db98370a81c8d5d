"""`uoom relay` as an operator runs it: a process, killed, stopped, scraped, health-checked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.metrics_shape import assert_metrics_document
from tests.integration.relay_support import (
    assert_order_kept,
    db,
    pending,
    plan,
    read_topic,
    relay_dsn,
    topic,
    until,
    write_events,
)

__all__ = ["relay_dsn", "topic"]  # fixtures
UOOM = [sys.executable, "-m", "commands"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RelayProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['UOOM_RELAY_METRICS_PORT']}/api/v1/metrics"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([*UOOM, "relay"], env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def signal(self, sig: signal.Signals) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*UOOM, "relay", "--check"], env=self.env, capture_output=True, text=True, timeout=30)

    async def metrics(self, suffix: str = "") -> aiohttp.ClientResponse:
        async with aiohttp.ClientSession() as session, session.get(self.url + suffix) as response:
            await response.read()
            return response

    async def wait_ready(self) -> None:
        async def answering() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            with contextlib.suppress(aiohttp.ClientError):
                async with aiohttp.ClientSession() as session, session.get(self.url) as response:
                    return (await response.json())["status"] == "ok"
            return False

        await until(answering, 30, every=0.1)


@pytest.fixture
def relay_process(relay_dsn: str, topic: str, tmp_path: Path) -> Iterator[RelayProcess]:
    env = dict(os.environ)
    env.update(
        UOOM_DATABASE_URL=relay_dsn,
        UOOM_KAFKA_TOPIC=topic,
        UOOM_KAFKA_DLQ_TOPIC=f"{topic}.dlq",
        UOOM_RELAY_METRICS_PORT=str(_free_port()),
        UOOM_RELAY_PROJECTOR="false",
        UOOM_RELAY_BATCH_SIZE="50",
        UOOM_RELAY_CONCURRENCY="2",
        UOOM_RELAY_PRUNE_INTERVAL="0",
        PYTHONUNBUFFERED="1",
    )
    relay = RelayProcess(env, tmp_path / "relay.log")
    yield relay
    relay.stop()


def _drained(pool):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await pending(pool) == 0

    return check


async def _processed(pool) -> int:  # type: ignore[no-untyped-def]
    return int(await pool.fetchval("SELECT count(*) FROM outbox_events WHERE processed"))


async def test_relay_killed_mid_batch_and_restarted_delivers_everything(
    settings, relay_dsn, topic, relay_process
) -> None:
    async with db(relay_dsn) as pool:
        written = await write_events(pool, plan(orders=500, versions=8))
        relay_process.start()

        async def some_published() -> bool:
            return await _processed(pool) >= 500

        await until(some_published, 30, every=0.01)
        assert relay_process.signal(signal.SIGKILL) == -signal.SIGKILL
        left = await pending(pool)
        assert left > 0, "the relay finished before it could be killed: write more events"
        relay_process.start()
        await until(_drained(pool), 60)
    received = await read_topic(settings.kafka_bootstrap, topic, expect=len(written), timeout=90)
    assert {r.id for r in received} == {str(w.id) for w in written}
    assert_order_kept(written, received)
    # a duplicate only for what was in flight at the kill: 2 workers x (50 heads + 50 followers)
    assert len(received) - len(written) <= 2 * 100


async def test_sigterm_finishes_the_batch_in_flight_and_exits_0(settings, relay_dsn, topic, relay_process) -> None:
    async with db(relay_dsn) as pool:
        await write_events(pool, plan(orders=500, versions=8))
        relay_process.start()

        async def some_published() -> bool:
            return await _processed(pool) >= 500

        await until(some_published, 30, every=0.01)
        started = time.monotonic()
        assert relay_process.signal(signal.SIGTERM) == 0
        assert time.monotonic() - started < 10
        processed = {str(r["id"]) for r in await pool.fetch("SELECT id FROM outbox_events WHERE processed")}
        assert await pending(pool) > 0
    received = await read_topic(settings.kafka_bootstrap, topic, expect=len(processed), timeout=60)
    # what Kafka has is exactly what the outbox says was published: nothing half-done
    assert sorted(r.id for r in received) == sorted(processed)
    assert "stopped" in relay_process.log.read_text()


async def test_metrics_endpoints_and_health_check(settings, relay_dsn, topic, relay_process) -> None:
    assert relay_process.check().returncode == 1  # nothing running yet
    relay_process.start()
    await relay_process.wait_ready()
    async with db(relay_dsn) as pool:
        await write_events(pool, plan(orders=5, versions=4))
        await until(_drained(pool), 10)
    await asyncio.sleep(1.1)  # the outbox numbers are cached for a second

    async with aiohttp.ClientSession() as session:
        async with session.get(relay_process.url) as response:
            assert response.status == 200
            summary = await response.json()
        async with session.get(relay_process.url + "/prometheus") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
    assert_metrics_document(summary, "relay", {"postgres", "kafka"})
    assert summary["status"] == "ok" and summary["problems"] == []
    assert summary["relay"]["published"]["processed"] == 20
    assert summary["latency"]["commitToAck"]["count"] == 20
    assert 0 < summary["latency"]["commitToAck"]["p99"] < 5000
    assert summary["relay"]["outbox"]["pending"] == 0 and summary["relay"]["outbox"]["deadLetters"] == 0
    for line in (
        "outbox_events_processed_total 20.0",
        "outbox_publish_latency_seconds_count 20.0",
        "outbox_events_pending 0.0",
        "outbox_lag_seconds 0.0",
        "outbox_publish_retries_total 0.0",
        "outbox_events_dead_lettered_total 0.0",
        "relay_kafka_up 1.0",
    ):
        assert line in text.splitlines(), line

    check = relay_process.check()
    assert check.returncode == 0, check.stderr
    assert check.stderr.startswith("relay ok") and check.stdout == ""
    assert relay_process.signal(signal.SIGTERM) == 0
    assert relay_process.check().returncode == 1


async def test_projector_process_follows_the_relay_even_when_it_is_killed(relay_process, topic) -> None:
    relay_process.env.update(UOOM_RELAY_PROJECTOR="true", UOOM_RELAY_PROJECTOR_GROUP=f"projector-{topic}")
    relay_process.start()
    await relay_process.wait_ready()
    assert relay_process.proc is not None
    pid = relay_process.proc.pid
    [child] = (Path(f"/proc/{pid}/task/{pid}/children").read_text()).split()
    assert b"daemons.relay.projector_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    assert relay_process.signal(signal.SIGKILL) == -signal.SIGKILL
    # the child sees its stdin close and stops by itself: no orphan keeps consuming
    await until(lambda: not Path(f"/proc/{child}").exists() or _zombie(child), 15)


def _zombie(pid: str) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def test_metrics_port_in_use_is_one_line_and_exit_1(relay_process) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        relay_process.env["UOOM_RELAY_METRICS_PORT"] = str(taken.getsockname()[1])
        result = subprocess.run([*UOOM, "relay"], env=relay_process.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot serve metrics on 127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1
