"""The whole platform as an operator starts it: `uoom up` runs the API, relay and optimizer
supervised, against the real stack. One order goes through it end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from tests.e2e.conftest import REPO, _wait_until_answers, free_port, order_body, poll
from uoom.config import Settings
from uoom.stores import redis_keys


@pytest.fixture(scope="module")
def platform(
    demo: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Path, subprocess.Popen[bytes]]]:
    ports = {"UOOM_API_PORT": free_port(), "UOOM_OPTIMIZER_PORT": free_port(), "UOOM_RELAY_METRICS_PORT": free_port()}
    env = dict(os.environ, **{k: str(v) for k, v in ports.items()}, UOOM_RELAY_POLL_INTERVAL="1")
    log = tmp_path_factory.mktemp("platform") / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands", "up", "--no-stack"], cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    urls = {
        "api": f"http://127.0.0.1:{ports['UOOM_API_PORT']}",
        "optimizer": f"http://127.0.0.1:{ports['UOOM_OPTIMIZER_PORT']}",
        "relay": f"http://127.0.0.1:{ports['UOOM_RELAY_METRICS_PORT']}",
    }
    try:
        _wait_until_answers(f"{urls['api']}/healthz", proc, log, timeout=60)
        _wait_until_answers(f"{urls['optimizer']}/healthz", proc, log, timeout=60)
        _wait_until_answers(f"{urls['relay']}/api/v1/metrics", proc, log, timeout=60)
        yield urls, log, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_an_order_flows_through_every_daemon(platform, api_key: str, settings: Settings) -> None:
    urls, log, _ = platform
    consumer = AIOKafkaConsumer(settings.kafka_topic, bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                auto_offset_reset="latest")  # fmt: skip
    await consumer.start()
    redis = aioredis.from_url(settings.redis_url.get_secret_value())
    try:
        await consumer.seek_to_end()
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(base_url=urls["api"], headers=headers, timeout=10) as api:
            created = await api.post("/api/orders", json=order_body(uuid.uuid4()))
            assert created.status_code == 201, created.text
            order = created.json()
            assert order["assignmentSource"] == "optimizer"

            seen: list[dict] = []

            async def event_of_our_order() -> dict | None:
                batches = await consumer.getmany(timeout_ms=200)
                for messages in batches.values():
                    seen.extend(orjson.loads(m.value) for m in messages)
                return next((e for e in seen if e["aggregateId"] == order["id"]), None)

            event, _ = await poll(event_of_our_order, timeout=15)
            assert event is not None, f"no event for {order['id']}; log:\n{log.read_text()[-1500:]}"
            assert event["type"] == "order.created" and event["version"] == 1
            assert set(event) == {"id", "type", "aggregateId", "aggregateType", "version", "occurredAt", "data"}

            async def load_taken() -> bool:
                holders = await redis.hget(redis_keys.ORDER_SLOT, order["id"])
                return holders is not None and holders.decode() == order["channelId"]

            assert (await poll(load_taken, timeout=15))[0], "the optimizer's load feed never took the slot"

            cancelled = await api.patch(f"/api/orders/{order['id']}/status", json={"status": "CANCELLED"},
                                        headers={"If-Match": '"1"'})  # fmt: skip
            assert cancelled.status_code == 200, cancelled.text

            async def load_released() -> bool:
                return await redis.hget(redis_keys.ORDER_SLOT, order["id"]) is None

            assert (await poll(load_released, timeout=15))[0], "the slot was never released"
            status = (await api.get(f"/api/orders/{order['id']}/status")).json()
            assert (status["status"], status["version"]) == ("CANCELLED", 2)
    finally:
        await consumer.stop()
        await redis.aclose()
    relay_metrics = httpx.get(f"{urls['relay']}/api/v1/metrics").json()
    assert relay_metrics, relay_metrics


def test_sigterm_stops_every_daemon_gracefully(platform) -> None:
    """Runs last in this module: it ends the platform the fixture started."""
    _, log, proc = platform
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0
    lines = log.read_text()
    for daemon in ("serve", "relay", "optimizer"):
        assert f"{daemon} | stopped\n" in lines, lines[-1500:]  # a graceful stop exits 0
    assert "all daemons stopped" in lines
    assert "restarting" not in lines  # nothing crashed on the way
