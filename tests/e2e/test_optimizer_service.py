"""`uoom optimizer` as a process: the /optimize contract, micro-batching, and the API using it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, order_body, run_api, run_daemon
from uoom.config import Settings
from uoom.tokens import optimizer_token

KEY = {"Authorization": f"Bearer {optimizer_token(Settings())}"}  # the key the API presents too


@pytest.fixture(scope="module")
def optimizer(demo: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, UOOM_OPTIMIZER_BATCH_WINDOW_MS="20", UOOM_DISPATCH_INTERVAL="3600")
    log = tmp_path_factory.mktemp("optimizer") / "optimizer.log"
    with run_daemon(log, ["optimizer", "--port", str(port)], env, f"{url}/healthz"):
        yield url


def body(order_id: str, km_north: float = 1.0) -> dict[str, object]:
    return {
        "orderId": order_id,
        "pickup": {"latitude": 40.754, "longitude": -73.984},
        "dropoff": {"latitude": 40.754 + km_north / 111, "longitude": -73.984},
        "value": 30,
        "readyAt": 300,
    }


async def test_optimize_answers_the_contract(optimizer: str) -> None:
    async with httpx.AsyncClient(base_url=optimizer, headers=KEY) as client:
        response = await client.post("/optimize", json={"orders": [body("a"), body("b", 3)], "deadlineMs": 50})
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] in ("OPTIMAL", "FEASIBLE")
    assert [a["orderId"] for a in answer["assignments"]] == ["a", "b"]
    for a in answer["assignments"]:
        assert a["channelId"] and a["cost"] > 0 and a["etaSeconds"] >= 300
    assert answer["solveMs"] >= 0


async def test_an_order_out_of_every_radius_is_an_explicit_fallback(optimizer: str) -> None:
    async with httpx.AsyncClient(base_url=optimizer, headers=KEY) as client:
        answer = (await client.post("/optimize", json={"orders": [body("far", 40)]})).json()
    assert answer["assignments"] == [{"orderId": "far", "channelId": None, "cost": 25.0, "etaSeconds": None,
                                      "tripId": None, "coRiderId": None, "pickupInS": None,
                                      "coRiderCost": None, "coRiderEtaSeconds": None}]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"orders": []}, "orders"),
        ({"orders": [{**body("x"), "pickup": {"latitude": 91, "longitude": 0}}]}, "orders.0.pickup.latitude"),
        ({"orders": [body("x")], "deadlineMs": 0}, "deadlineMs"),
    ],
)
async def test_bad_requests_are_422_problems_naming_the_field(optimizer: str, payload: dict, field: str) -> None:
    async with httpx.AsyncClient(base_url=optimizer, headers=KEY) as client:
        response = await client.post("/optimize", json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["detail"]


async def test_concurrent_requests_are_merged_into_one_solve(optimizer: str) -> None:
    async with httpx.AsyncClient(base_url=optimizer, headers=KEY) as client:
        before = (await client.get("/api/metrics")).json()["optimizer"]["batchOrders"]["count"]
        answers = await asyncio.gather(*(client.post("/optimize", json={"orders": [body(f"c{i}")]}) for i in range(8)))
        assert all(a.status_code == 200 for a in answers)
        metrics = (await client.get("/api/metrics")).json()
    solves = metrics["optimizer"]["batchOrders"]["count"] - before
    assert solves < 8, metrics  # at least two requests shared a model
    assert metrics["optimizer"]["batchOrders"]["max"] >= 2


async def test_the_api_assigns_through_the_running_optimizer(
    optimizer: str, api_key: str, tmp_path: Path, settings: Settings
) -> None:
    with run_api(tmp_path, "with-optimizer", UOOM_OPTIMIZER_URL=optimizer) as api:
        async with api.client(api_key) as client:
            created = await client.post("/api/orders", json=order_body())
            metrics = (await client.get("/api/metrics")).json()
    assert created.status_code == 201, created.text
    assert created.json()["assignmentSource"] == "optimizer"
    assert metrics["api"]["assignment"]["sources"] == {"optimizer": 1}
    assert metrics["api"]["assignment"]["fallbackRate"] == 0.0
