"""UOOM_DISPATCH_POLICY=in-time through the real processes: the API places an order whose food is
far from ready with no channel (held), and the optimizer's round assigns it once the food is within
the lead of ready: its row and its event show it, and the metrics count it. With no optimizer
running, the API assigns it itself once it is past due by the grace. Two held orders of one
restaurant, due together, share a courier: the round puts them on one trip."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
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
GRACE_S = 2.0  # past due, the API steps in after this (the test's UOOM_DISPATCH_HELD_GRACE_SECONDS)


@pytest.fixture
async def platform(scratch_dsn: str, settings: Settings, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    redis_url = await flushed_redis(settings, REDIS_DB)
    async with scratch_platform(settings, scratch_dsn, "in-time") as env:
        conn = await asyncpg.connect(scratch_dsn)
        try:
            prep_s = 60.0 * await conn.fetchval("SELECT prep_minutes FROM restaurants WHERE id = $1", restaurant()[0])
            env |= {"UOOM_REDIS_URL": redis_url, "UOOM_DISPATCH_POLICY": "in-time",
                    "UOOM_DISPATCH_LEAD_SECONDS": str(prep_s - HELD_FOR_S), "UOOM_DISPATCH_RELEASE_INTERVAL": "0.5",
                    "UOOM_DISPATCH_HELD_GRACE_SECONDS": str(GRACE_S)}  # fmt: skip
            key = (await create_key(settings, "in-time", dsn=scratch_dsn))[1]
            yield {"env": env, "key": key, "db": conn, "logs": tmp_path}
        finally:
            await conn.close()


@contextlib.contextmanager
def with_optimizer(platform: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The optimizer and the API; the API's sweeper a minute behind (a slow round must not lose to it)."""
    port = free_port()
    optimizer = f"http://127.0.0.1:{port}"
    env = platform["env"] | {"UOOM_DISPATCH_HELD_GRACE_SECONDS": "60"}
    optimizer_env = dict(os.environ, **env, PYTHONUNBUFFERED="1")
    with (
        run_daemon(
            platform["logs"] / "optimizer.log",
            ["optimizer", "--port", str(port)],
            optimizer_env,
            f"{optimizer}/healthz",
        ),  # fmt: skip
        run_api(platform["logs"], "in-time", UOOM_OPTIMIZER_URL=optimizer, **env) as api,
    ):
        yield platform | {"api": api, "optimizer": optimizer}


async def held_order(client: httpx.AsyncClient) -> dict[str, Any]:
    created = await client.post("/api/orders", json=order_body())
    assert created.status_code == 201, created.text
    order: dict[str, Any] = created.json()
    assert (order["channelId"], order["assignmentSource"], order["deliveryCost"]) == (None, "held", None)
    return order


async def assigned(db: asyncpg.Connection, order_id: str, within_s: float) -> tuple[Any, float]:
    """The order's row once it has a channel (None if not within `within_s`), and the seconds waited."""

    async def row() -> Any:
        return await db.fetchrow(
            "SELECT channel_id, assignment_source, version FROM orders WHERE id = $1 AND channel_id IS NOT NULL",
            order_id,
        )

    return await poll(row, timeout=within_s, interval=0.2)


async def test_a_held_order_gets_its_channel_from_the_optimizer_once_due(platform: dict[str, Any]) -> None:
    db: asyncpg.Connection = platform["db"]
    with with_optimizer(platform) as running:
        async with running["api"].client(running["key"]) as client:
            order = await held_order(client)
            assert (await client.get("/api/metrics")).json()["api"]["assignment"]["sources"] == {"held": 1}
            row, waited = await assigned(db, order["id"], HELD_FOR_S + 20)
            assert row is not None, "the optimizer never assigned the held order"
            assert (row["assignment_source"], row["version"]) == ("in-time", 2)
            assert waited >= HELD_FOR_S - 1.0, f"assigned {waited:.1f} s after creation: before it was due"
            event = await db.fetchrow(
                "SELECT type, data FROM outbox_events WHERE aggregate_id = $1 AND aggregate_version = 2", order["id"]
            )
            data = orjson.loads(event["data"])  # a plain connection: no JSON codec
            assert event["type"] == "order.channel_reassigned"
            assert (data["from"], data["to"]) == (None, row["channel_id"])
            metrics = (await client.get(f"{running['optimizer']}/api/metrics")).json()["optimizer"]
    assert (metrics["dispatchPolicy"], metrics["heldAssigned"]) == ("in-time", 1)


async def test_two_held_orders_of_one_restaurant_go_out_on_one_trip(platform: dict[str, Any]) -> None:
    """Due in the same round, they pair; a round apart, the second joins the first's trip."""
    db: asyncpg.Connection = platform["db"]
    with with_optimizer(platform) as running:
        async with running["api"].client(running["key"]) as client:
            first, second = await asyncio.gather(held_order(client), held_order(client))
            rows = [await assigned(db, order["id"], HELD_FOR_S + 20) for order in (first, second)]
            metrics = (await client.get(f"{running['optimizer']}/api/metrics")).json()["optimizer"]
    assert all(row is not None for row, _ in rows), "the optimizer never assigned the held orders"
    trips = await db.fetch(
        "SELECT id, trip_id, co_rider_id FROM orders WHERE id = ANY($1::uuid[])", [first["id"], second["id"]]
    )
    by_id = {str(r["id"]): r for r in trips}
    a, b = by_id[first["id"]], by_id[second["id"]]
    assert a["trip_id"] == b["trip_id"] is not None
    assert (str(a["co_rider_id"]), str(b["co_rider_id"])) == (second["id"], first["id"])
    assert await db.fetchval("SELECT riders FROM trips WHERE id = $1", a["trip_id"]) == 2
    assert metrics["heldAssigned"] == 2 and metrics["heldShared"] >= 1


async def test_with_no_optimizer_the_api_assigns_a_held_order_past_due(platform: dict[str, Any]) -> None:
    """Nothing listens at UOOM_OPTIMIZER_URL: past the grace, the API's sweeper gives the held order
    the channel the API gives at creation when the optimizer does not answer."""
    with run_api(platform["logs"], "in-time-alone", **platform["env"]) as api:
        async with api.client(platform["key"]) as client:
            order = await held_order(client)
            row, waited = await assigned(platform["db"], order["id"], HELD_FOR_S + GRACE_S + 20)
            sources = (await client.get("/api/metrics")).json()["api"]["assignment"]["sources"]
    assert row is not None, "nothing assigned the held order"
    assert row["assignment_source"] in ("ranking", "greedy") and row["version"] == 2
    assert waited >= HELD_FOR_S + GRACE_S - 1.0, f"assigned {waited:.1f} s after creation: before the grace ran out"
    assert sources == {"held": 1, row["assignment_source"]: 1}
