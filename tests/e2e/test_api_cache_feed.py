"""The whole write-to-read loop with real daemons: two API workers, the outbox relay, Kafka.
A worker's status cache is kept coherent by the order events, so a change made through another
worker shows up long before the cache TTL, in a database and topic of this test's own."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ApiProcess, create_key, free_port, poll, run_api, run_daemon, scratch_platform
from tests.e2e.test_api_orders import create, patch
from uoom.config import Settings

CACHE_TTL_MS = 60_000  # so anything seen sooner came through the events
EVENT_BOUND_S = 3.0  # commit -> relay -> Kafka -> worker, with margin for a shared 2-core machine


@pytest.fixture
async def pipeline(scratch_dsn: str, settings: Settings, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with scratch_platform(settings, scratch_dsn, "api-feed") as env:
        metrics_port = free_port()
        relay_env = dict(os.environ, **env, UOOM_RELAY_METRICS_PORT=str(metrics_port), UOOM_RELAY_PROJECTOR="false",
                         UOOM_RELAY_PRUNE_INTERVAL="0", PYTHONUNBUFFERED="1")  # fmt: skip
        key = (await create_key(settings, "feed", dsn=scratch_dsn))[1]
        with (
            run_api(tmp_path, "feed-a", UOOM_STATUS_CACHE_TTL_MS=str(CACHE_TTL_MS), **env) as a,
            run_api(tmp_path, "feed-b", UOOM_STATUS_CACHE_TTL_MS=str(CACHE_TTL_MS), **env) as b,
            run_daemon(tmp_path / "relay.log", ["relay"], relay_env, f"http://127.0.0.1:{metrics_port}/api/v1/metrics"),
        ):
            yield {"a": a, "b": b, "key": key}


async def changed_elsewhere_seen_within(a: httpx.AsyncClient, b: httpx.AsyncClient, bound: float) -> float | None:
    order = await create(a)
    assert (await a.get(f"/api/orders/{order['id']}/status")).json()["status"] == "PENDING"  # cached in a
    assert (await patch(b, order["id"], "CONFIRMED", 1)).status_code == 200

    async def seen() -> bool:
        return (await a.get(f"/api/orders/{order['id']}/status")).json()["status"] == "CONFIRMED"

    ok, seconds = await poll(seen, timeout=bound, interval=0.02)
    return seconds if ok else None


async def test_change_through_another_worker_reaches_the_cache_through_the_order_events(
    pipeline: dict[str, Any],
) -> None:
    api_a: ApiProcess = pipeline["a"]
    api_b: ApiProcess = pipeline["b"]
    async with api_a.client(pipeline["key"]) as a, api_b.client(pipeline["key"]) as b:
        # the workers read the topic from its end: wait until a's consumer has its partitions
        for _ in range(10):
            if await changed_elsewhere_seen_within(a, b, EVENT_BOUND_S) is not None:
                break
        else:
            raise AssertionError("no change made through worker b ever reached worker a's cache")
        for _ in range(3):
            seconds = await changed_elsewhere_seen_within(a, b, EVENT_BOUND_S)
            assert seconds is not None, f"not seen within {EVENT_BOUND_S} s (the cache TTL is {CACHE_TTL_MS} ms)"
