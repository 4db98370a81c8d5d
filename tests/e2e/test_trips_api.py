"""Two-order trips end to end: `uoom serve` asks `uoom optimizer` (both processes) for each new
order with its restaurant; the optimizer joins the second order of a restaurant to the first one's
open trip, and both orders show the trip and each other. A database, Redis database and Kafka
topic of the test's own: the demo channels there bundle (`uoom seed demo` marks the day's four)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    create_key,
    flushed_redis,
    free_port,
    order_body,
    poll,
    run_api,
    run_daemon,
    scratch_platform,
)
from uoom.config import Settings

REDIS_DB = 9  # this module's own Redis database


@pytest.fixture
async def platform(scratch_dsn: str, settings: Settings, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    redis_url = await flushed_redis(settings, REDIS_DB)
    async with scratch_platform(settings, scratch_dsn, "trips") as env:
        env["UOOM_REDIS_URL"] = redis_url
        key = (await create_key(settings, "trips", dsn=scratch_dsn))[1]
        port = free_port()
        optimizer = f"http://127.0.0.1:{port}"
        optimizer_env = dict(os.environ, **env, UOOM_DISPATCH_INTERVAL="3600", PYTHONUNBUFFERED="1")
        with (
            run_daemon(
                tmp_path / "optimizer.log", ["optimizer", "--port", str(port)], optimizer_env, f"{optimizer}/healthz"
            ),  # fmt: skip
            # a loaded machine's first solve may take over the 100 ms default: the ranking would answer
            run_api(tmp_path, "trips", UOOM_OPTIMIZER_URL=optimizer, UOOM_OPTIMIZER_TIMEOUT_MS="3000", **env) as api,
        ):
            yield {"api": api, "key": key, "optimizer": optimizer}


async def test_two_orders_of_one_restaurant_share_a_trip_and_name_each_other(platform: dict[str, Any]) -> None:
    async with platform["api"].client(platform["key"]) as client:
        first = (await client.post("/api/orders", json=order_body())).json()
        second = (await client.post("/api/orders", json=order_body())).json()
        assert first["assignmentSource"] == second["assignmentSource"] == "optimizer", (first, second)
        assert first["tripId"] and second["tripId"] == first["tripId"]
        assert second["coRiderId"] == first["id"] and second["channelId"] == first["channelId"]

        async def first_names_its_co_rider() -> dict[str, Any] | None:
            shown = (await client.get(f"/api/orders/{first['id']}")).json()
            return shown if shown.get("coRiderId") == second["id"] else None

        shown, _ = await poll(first_names_its_co_rider, timeout=5.0)
        assert shown, "the first rider's view never named the second order"
        assert shown["tripId"] == first["tripId"]
        # re-priced: one drop-off, so the trip costs what the first rider alone did, and the two
        # shares sum to it (each to the cent)
        shares = Decimal(shown["deliveryCost"]) + Decimal(second["deliveryCost"])
        assert abs(shares - Decimal(first["deliveryCost"])) <= Decimal("0.01"), (first, second, shown)
        assert Decimal(shown["deliveryCost"]) < Decimal(first["deliveryCost"])
    async with httpx.AsyncClient(base_url=platform["optimizer"]) as optimizer:
        trips = (await optimizer.get("/api/metrics")).json()["optimizer"]["trips"]
    assert trips["joins"] == 1 and trips["singles"] == 1
