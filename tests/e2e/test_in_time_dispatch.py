"""UOOM_DISPATCH_POLICY=in-time through the real processes: the API places an order whose food is
far from ready with no channel (held), and the optimizer's round assigns it once the food is within
the lead of ready: its row and its event show it, and the metrics count it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from tests.e2e.conftest import (
    create_key,
    flushed_redis,
    free_port,
    order_body,
    poll,
    restaurant,
    run_api,
    run_daemon,
    scratch_platform,
)
from uoom.config import Settings

REDIS_DB = 8  # this module's own Redis database
HELD_FOR_S = 3.0  # the lead is the kitchen time less this: an order is due this long after its creation


@pytest.fixture
async def platform(scratch_dsn: str, settings: Settings, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    redis_url = await flushed_redis(settings, REDIS_DB)
    async with scratch_platform(settings, scratch_dsn, "in-time") as env:
        restaurant_id = restaurant()[0]
        conn = await asyncpg.connect(scratch_dsn)
        prep_s = 60.0 * await conn.fetchval("SELECT prep_minutes FROM restaurants WHERE id = $1", restaurant_id)
        env |= {"UOOM_REDIS_URL": redis_url, "UOOM_DISPATCH_POLICY": "in-time",
                "UOOM_DISPATCH_LEAD_SECONDS": str(prep_s - HELD_FOR_S),
                "UOOM_DISPATCH_RELEASE_INTERVAL": "0.5"}  # fmt: skip
        key = (await create_key(settings, "in-time", dsn=scratch_dsn))[1]
        port = free_port()
        optimizer = f"http://127.0.0.1:{port}"
        optimizer_env = dict(os.environ, **env, PYTHONUNBUFFERED="1")
        try:
            with (
                run_daemon(
                    tmp_path / "optimizer.log",
                    ["optimizer", "--port", str(port)],
                    optimizer_env,
                    f"{optimizer}/healthz",
                ),  # fmt: skip
                run_api(
                    tmp_path, "in-time", UOOM_OPTIMIZER_URL=optimizer, UOOM_OPTIMIZER_TIMEOUT_MS="3000", **env
                ) as api,
            ):
                yield {"api": api, "key": key, "optimizer": optimizer, "db": conn}
        finally:
            await conn.close()


async def test_a_held_order_gets_its_channel_from_the_optimizer_once_due(platform: dict[str, Any]) -> None:
    db: asyncpg.Connection = platform["db"]
    async with platform["api"].client(platform["key"]) as client:
        created = await client.post("/api/orders", json=order_body())
        assert created.status_code == 201, created.text
        order = created.json()
        assert (order["channelId"], order["assignmentSource"], order["deliveryCost"]) == (None, "held", None)
        sources = (await client.get("/api/metrics")).json()["api"]["assignment"]["sources"]
        assert sources == {"held": 1}

        async def assigned() -> Any:
            return await db.fetchrow(
                "SELECT channel_id, assignment_source, version FROM orders WHERE id = $1 AND channel_id IS NOT NULL",
                order["id"],
            )

        row, waited = await poll(assigned, timeout=HELD_FOR_S + 20, interval=0.2)
        assert row is not None, "the optimizer never assigned the held order"
        assert (row["assignment_source"], row["version"]) == ("in-time", 2)
        assert waited >= HELD_FOR_S - 1.0, f"assigned {waited:.1f} s after creation: before it was due"
        event = await db.fetchrow(
            "SELECT type, data FROM outbox_events WHERE aggregate_id = $1 AND aggregate_version = 2", order["id"]
        )
        data = orjson.loads(event["data"])  # a plain connection: no JSON codec
        assert event["type"] == "order.channel_reassigned" and (data["from"], data["to"]) == (None, row["channel_id"])
    async with platform["api"].client(platform["key"]) as client:
        metrics = (await client.get(f"{platform['optimizer']}/api/metrics")).json()["optimizer"]
    assert (metrics["dispatchPolicy"], metrics["heldAssigned"]) == ("in-time", 1)
