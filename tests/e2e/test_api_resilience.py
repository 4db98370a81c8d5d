"""Failure behaviour with real processes: the read side's DynamoDB dies and comes back empty; the
optimizer is absent or hangs. Orders keep flowing in every case."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

import uoom.demo
from tests.e2e.conftest import ApiProcess, DynamoDBServer, TcpProxy, create_key, order_body, poll, run_api
from tests.e2e.test_api_orders import create, patch
from uoom.config import Settings
from uoom.provision import ensure_status_table
from uoom.stores.aws import dynamodb_client
from uoom.stores.readmodel import put_if_newer

CHANNELS = {c[0] for c in uoom.demo.CHANNELS}


# --- DynamoDB down, then back empty ---------------------------------------------------------------


@pytest.fixture
def own_dynamodb(dynamodb_server: DynamoDBServer, settings: Settings, demo: None, tmp_path: Path) -> Iterator[Any]:
    """A DynamoDB server of this test's own with the status table, and an API process reading it
    with the in-process status cache off, so every status read goes to the read side."""
    dynamodb_server.start()
    own = settings.model_copy(update={"dynamodb_endpoint": dynamodb_server.endpoint})
    asyncio.run(ensure_status_table(own))
    endpoint = {"DYNAMODB_ENDPOINT": dynamodb_server.endpoint, "UOOM_DYNAMODB_ENDPOINT": dynamodb_server.endpoint}
    with run_api(tmp_path, "own-dynamodb", UOOM_STATUS_CACHE_TTL_MS="0", **endpoint) as api:
        yield api, dynamodb_server, own


async def item_in(settings: Settings, order_id: str) -> dict[str, Any] | None:
    async with dynamodb_client(settings, fail_fast=True) as ddb:
        response = await ddb.get_item(TableName=settings.dynamodb_table, Key={"orderId": {"S": order_id}})
    item: dict[str, Any] | None = response.get("Item")
    return item


async def test_dynamodb_down_orders_are_created_and_status_served_from_postgres_then_backfilled(
    own_dynamodb: Any, settings: Settings
) -> None:
    api, dynamodb, own = own_dynamodb
    key = (await create_key(settings, "ddb-down"))[1]
    async with api.client(key) as client:
        before = await create(client)

        # New items are the projector's to write, and none follows this DynamoDB: the first read
        # misses, PostgreSQL answers, and the API backfills the item.
        assert (await client.get(f"/api/orders/{before['id']}/status")).json()["source"] == "postgres"

        async def backfilled() -> dict[str, Any] | None:
            return await item_in(own, before["id"])

        item, _ = await poll(backfilled, timeout=5)
        assert item is not None, "the miss was not backfilled to our DynamoDB"
        assert (await client.get(f"/api/orders/{before['id']}/status")).json()["source"] == "dynamodb"

        dynamodb.kill()
        started = time.monotonic()
        during = await create(client)
        assert time.monotonic() - started < 3, "a dead read model must not hold the write path"
        assert during["channelId"] in CHANNELS
        for order in (before, during):
            status = await client.get(f"/api/orders/{order['id']}/status")
            assert status.status_code == 200, status.text
            assert (status.json()["status"], status.json()["source"]) == ("PENDING", "postgres")
        changed = await patch(client, during["id"], "CONFIRMED", 1)
        assert changed.status_code == 200, changed.text
        status = (await client.get(f"/api/orders/{during['id']}/status")).json()
        assert (status["status"], status["version"], status["source"]) == ("CONFIRMED", 2, "postgres")
        batch = await client.post("/api/orders/status:batch", json={"orderIds": [before["id"], during["id"]]})
        assert batch.status_code == 200
        assert {o["source"] for o in batch.json()["orders"]} == {"postgres"} and batch.json()["notFound"] == []
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["dependencies"]["dynamodb"].startswith("down")
        assert ready.json()["dependencies"]["postgres"] == "up"

        dynamodb.start()  # back, in memory, empty: as after a restart
        await ensure_status_table(own)
        assert await item_in(own, during["id"]) is None
        status = (await client.get(f"/api/orders/{during['id']}/status")).json()
        assert (status["status"], status["source"]) == ("CONFIRMED", "postgres")

        async def backfilled() -> dict[str, Any] | None:
            return await item_in(own, during["id"])

        item, _ = await poll(backfilled, timeout=10, interval=0.05)
        assert item is not None, "the status read did not backfill the read model"
        assert (item["status"]["S"], item["version"]["N"], item["customerId"]["S"]) == (
            "CONFIRMED", "2", during["customerId"],
        )  # fmt: skip
        status = (await client.get(f"/api/orders/{during['id']}/status")).json()
        assert (status["status"], status["version"], status["source"]) == ("CONFIRMED", 2, "dynamodb")


# --- optimizer absent: fallback channels, breaker -------------------------------------------------


@pytest.fixture(scope="module")
def breaker_api(demo: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """Optimizer absent (nothing listens on its port), breaker opening after 2 failures and
    staying open for the whole test."""
    with run_api(tmp_path_factory.mktemp("breaker"), "breaker", UOOM_BREAKER_FAILURE_THRESHOLD="2",
                 UOOM_BREAKER_RECOVERY_SECONDS="600") as api:  # fmt: skip
        yield api


def prometheus_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} missing from /metrics:\n{text}")


async def test_optimizer_absent_orders_get_fallback_channels_and_the_breaker_opens_after_threshold(
    breaker_api: ApiProcess, settings: Settings
) -> None:
    key = (await create_key(settings, "breaker"))[1]
    async with breaker_api.client(key) as client:
        first = await create(client)
        assert first["channelId"] in CHANNELS and first["assignmentSource"] != "optimizer"
        metrics = (await client.get("/api/metrics")).json()["api"]["assignment"]
        assert metrics["breaker"] == "closed"  # one failure, threshold 2
        prom = (await client.get("/metrics")).text
        assert prometheus_value(prom, "optimizer_breaker_open") == 0

        more = [await create(client) for _ in range(4)]
        assert all(o["channelId"] in CHANNELS and o["assignmentSource"] != "optimizer" for o in more)
        metrics = (await client.get("/api/metrics")).json()["api"]["assignment"]
        assert metrics["fallbackRate"] == 1.0
        assert sum(metrics["sources"].values()) == 5 and "optimizer" not in metrics["sources"]
        assert metrics["breaker"] == "opened"
        prom = (await client.get("/metrics")).text
        assert prometheus_value(prom, "optimizer_breaker_open") == 1
        assert "order_assignments_total" in prom


@pytest.fixture(scope="module")
def hanging_optimizer() -> Iterator[str]:
    """A port that accepts connections and never answers: an optimizer stuck mid-request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture(scope="module")
def hanging_api(demo: None, hanging_optimizer: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with run_api(tmp_path_factory.mktemp("hanging"), "hanging", UOOM_OPTIMIZER_URL=hanging_optimizer,
                 UOOM_OPTIMIZER_TIMEOUT_MS="100", UOOM_BREAKER_FAILURE_THRESHOLD="3",
                 UOOM_BREAKER_RECOVERY_SECONDS="600") as api:  # fmt: skip
        yield api


async def test_hanging_optimizer_costs_one_timeout_per_order_until_the_breaker_opens(
    hanging_api: ApiProcess, settings: Settings
) -> None:
    key = (await create_key(settings, "hanging"))[1]
    async with hanging_api.client(key) as client:
        await client.get("/api/metrics")  # warm the connection
        timings = []
        for _ in range(6):
            started = time.monotonic()
            order = await create(client)
            timings.append(time.monotonic() - started)
            assert order["channelId"] in CHANNELS and order["assignmentSource"] != "optimizer"
        # the first three wait for the 100 ms timeout; then the open breaker skips the call
        assert all(t >= 0.1 for t in timings[:3]), timings
        assert all(t < 1.0 for t in timings), timings
        metrics = (await client.get("/api/metrics")).json()["api"]["assignment"]
        assert metrics["breaker"] == "opened" and metrics["fallbackRate"] == 1.0


async def test_main_api_reports_fallback_rate_one_without_an_optimizer(client: httpx.AsyncClient) -> None:
    await create(client, customer_id=uuid.uuid4())
    assignment = (await client.get("/api/metrics")).json()["api"]["assignment"]
    assert assignment["fallbackRate"] == 1.0
    assert assignment["sources"].get("optimizer", 0) == 0


# --- PostgreSQL and Redis down (for one API process, behind a TCP relay) --------------------------


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=auth + proxy.address))


def target_of(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


REQUEST_TIMEOUT_S = 1.5


@contextlib.asynccontextmanager
async def api_behind_relay_to_postgres(
    failure: str, proxy_factory: Any, settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, TcpProxy]]:
    """An API process whose PostgreSQL connections go through a relay the test can cut
    ("refused") or freeze ("hanging", as in a partition or a stuck server)."""
    dsn = settings.database_url.get_secret_value()
    proxy = proxy_factory(target_of(dsn, 5432))
    key = (await create_key(settings, f"pg-{failure}"))[1]
    with run_api(tmp_path, f"pg-{failure}", UOOM_DATABASE_URL=through(proxy, dsn),
                 UOOM_API_REQUEST_TIMEOUT_MS=str(int(REQUEST_TIMEOUT_S * 1000))) as api:  # fmt: skip
        async with api.client(key, timeout=30) as client:
            yield client, proxy


def postgres_fails(proxy: TcpProxy, failure: str) -> None:
    proxy.cut() if failure == "refused" else proxy.freeze()


def postgres_returns(proxy: TcpProxy) -> None:
    proxy.cut()
    proxy.start()


KEY_CACHE_S = 1.0  # the API trusts an API-key lookup this long


@pytest.mark.parametrize("failure", ["refused", "hanging"])
async def test_postgres_down_writes_get_503_within_the_request_timeout_then_recover(
    failure: str, proxy_factory: Any, settings: Settings, demo: None, tmp_path: Path
) -> None:
    """PostgreSQL refusing connections or hanging mid-query: creates and changes answer 503 with
    Retry-After within UOOM_API_REQUEST_TIMEOUT_MS (1.5 s here, + 1 s margin), never a 500 and
    never a hang, also once the API-key lookup cache has run out; when the database is back, so
    is the API."""
    async with api_behind_relay_to_postgres(failure, proxy_factory, settings, tmp_path) as (client, proxy):
        order = await create(client)
        postgres_fails(proxy, failure)
        try:
            for _ in range(2):  # the second round after the API-key lookup cache ran out
                for method, path, body, headers in (
                    ("POST", "/api/orders", order_body(), {}),
                    ("PATCH", f"/api/orders/{order['id']}/status", {"status": "CONFIRMED"}, {"If-Match": '"1"'}),
                ):
                    started = time.monotonic()
                    response = await client.request(method, path, json=body, headers=headers)
                    seconds = time.monotonic() - started
                    assert seconds < REQUEST_TIMEOUT_S + 1.0, (method, path, seconds, response.status_code)
                    assert response.status_code == 503, (method, path, response.text)
                    assert response.headers["Retry-After"]
                await asyncio.sleep(KEY_CACHE_S + 0.1)
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["dependencies"]["postgres"] != "up"
        finally:
            postgres_returns(proxy)

        async def recovered() -> bool:
            return (await client.post("/api/orders", json=order_body())).status_code == 201

        back, _ = await poll(recovered, timeout=15, interval=0.2)
        assert back, "the API did not recover when PostgreSQL came back"


@pytest.mark.parametrize("failure", ["refused", "hanging"])
async def test_postgres_down_status_reads_of_orders_in_the_read_model_keep_working(
    failure: str, proxy_factory: Any, settings: Settings, demo: None, tmp_path: Path
) -> None:
    """docs/api.md: with PostgreSQL down, "cached and read-model status reads keep working" -
    also after the API-key lookup cache (1 s) has run out, and within the request timeout."""
    async with api_behind_relay_to_postgres(failure, proxy_factory, settings, tmp_path) as (client, proxy):
        order = await create(client)
        async with dynamodb_client(settings, fail_fast=True) as ddb:  # as the relay's projector would
            assert await put_if_newer(ddb, settings, order)
        url = f"/api/orders/{order['id']}/status"
        assert (await client.get(url)).status_code == 200
        postgres_fails(proxy, failure)
        try:
            for _ in range(3):
                started = time.monotonic()
                response = await client.get(url)
                seconds = time.monotonic() - started
                assert response.status_code == 200, response.text
                assert response.json()["status"] == "PENDING"
                assert seconds < REQUEST_TIMEOUT_S + 1.0, seconds
                await asyncio.sleep(KEY_CACHE_S / 2)
        finally:
            postgres_returns(proxy)


@pytest.mark.parametrize("failure", ["refused", "hanging"])
async def test_redis_down_orders_still_flow_and_the_rate_limit_still_holds_per_process(
    failure: str, proxy_factory: Any, settings: Settings, demo: None, tmp_path: Path
) -> None:
    """Redis down or hanging: orders are still created (the greedy rule assigns a channel when
    the Redis ranking is unreachable), quickly, and each process keeps enforcing the limit."""
    redis_url = settings.redis_url.get_secret_value()
    proxy = proxy_factory(target_of(redis_url, 6379))
    key = (await create_key(settings, f"redis-{failure}"))[1]
    with run_api(tmp_path, f"redis-{failure}", UOOM_REDIS_URL=through(proxy, redis_url),
                 UOOM_API_RATE_LIMIT_PER_SECOND="5") as api:  # fmt: skip
        async with api.client(key) as client:
            await create(client)
            proxy.cut() if failure == "refused" else proxy.freeze()
            try:
                await asyncio.sleep(1.0)  # a fresh rate-limit window
                started = time.monotonic()
                order = await create(client)
                assert time.monotonic() - started < 1.0
                assert order["channelId"] in CHANNELS and order["assignmentSource"] == "greedy"
                status = await client.get(f"/api/orders/{order['id']}/status")
                assert status.status_code == 200
                burst = await asyncio.gather(*[client.get(f"/api/orders/{order['id']}/status") for _ in range(15)])
                assert 429 in {r.status_code for r in burst}
                assert {r.status_code for r in burst} <= {200, 429}
                ready = (await client.get("/readyz")).json()
                assert ready["ready"] is True and ready["dependencies"]["redis"] != "up"
            finally:
                proxy.cut()
                proxy.start()
