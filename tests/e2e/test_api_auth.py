"""API keys and the per-key rate limit, against `uoom serve` as a process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import REPO, ApiProcess, create_key, poll, run_api
from tests.e2e.test_api_orders import create, is_problem
from uoom import apikeys
from uoom.config import Settings


async def test_request_without_a_key_is_401_with_www_authenticate(api: ApiProcess) -> None:
    async with api.client() as anonymous:
        for method, path in (("GET", f"/api/orders/{uuid.uuid4()}/status"), ("POST", "/api/orders"),
                             ("GET", f"/api/customers/{uuid.uuid4()}/orders"),
                             ("POST", "/api/orders/status:batch")):  # fmt: skip
            response = await anonymous.request(method, path, json={})
            is_problem(response, 401)
            assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_unknown_key_is_401_in_either_header(api: ApiProcess) -> None:
    bogus = apikeys.new_key()
    async with api.client() as c:
        for headers in ({"Authorization": f"Bearer {bogus}"}, {"X-API-Key": bogus},
                        {"Authorization": "Bearer"}, {"Authorization": f"Basic {bogus}"}):  # fmt: skip
            is_problem(await c.get(f"/api/orders/{uuid.uuid4()}/status", headers=headers), 401)


async def test_valid_key_works_in_either_header(api: ApiProcess, api_key: str, client: httpx.AsyncClient) -> None:
    order = await create(client)
    async with api.client() as c:
        for headers in ({"Authorization": f"Bearer {api_key}"}, {"authorization": f"bearer {api_key}"},
                        {"X-API-Key": api_key}):  # fmt: skip
            response = await c.get(f"/api/orders/{order['id']}/status", headers=headers)
            assert response.status_code == 200, (headers, response.text)


async def test_revoked_key_is_refused_with_403_within_a_second_and_a_half(
    api: ApiProcess, settings: Settings, db: asyncpg.Connection
) -> None:
    name, key = await create_key(settings, "to-revoke")
    async with api.client(key) as c:
        order = await create(c)  # the key is known, and cached, in the API process
        url = f"/api/orders/{order['id']}/status"
        assert (await c.get(url)).status_code == 200
        await apikeys.revoke(db, name)

        async def refused() -> httpx.Response | None:
            response = await c.get(url)
            return response if response.status_code == 403 else None

        response, seconds = await poll(refused, timeout=5)
        assert response is not None, "the revoked key is still accepted"
        assert seconds <= 1.5, seconds
        is_problem(response, 403)
        is_problem(await c.post("/api/orders", json={}), 403)


async def test_health_readiness_metrics_and_openapi_need_no_key(api: ApiProcess) -> None:
    async with api.client() as anonymous:
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        ready = await anonymous.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True
        assert ready.json()["dependencies"] == {"postgres": "up", "redis": "up", "dynamodb": "up"}
        assert (await anonymous.get("/api/metrics")).status_code == 200
        assert "dynamodb_read_latency_ms" in (await anonymous.get("/metrics")).text
        assert "/api/orders" in (await anonymous.get("/openapi.json")).json()["paths"]


@pytest.fixture(scope="module")
def metrics_behind_key(demo: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with run_api(tmp_path_factory.mktemp("metrics-key"), "metrics-key", UOOM_API_METRICS_REQUIRE_KEY="true") as api:
        yield api


async def test_metrics_need_a_key_when_configured_and_health_stays_open(
    metrics_behind_key: ApiProcess, api_key: str
) -> None:
    async with metrics_behind_key.client() as anonymous:
        is_problem(await anonymous.get("/api/metrics"), 401)
        is_problem(await anonymous.get("/metrics"), 401)
        assert (await anonymous.get("/healthz")).status_code == 200
        assert (await anonymous.get("/readyz")).status_code == 200
    async with metrics_behind_key.client(api_key) as c:
        assert (await c.get("/api/metrics")).status_code == 200
        assert (await c.get("/metrics")).status_code == 200


RATE_LIMIT = 5


@pytest.fixture(scope="module")
def limited_api(demo: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with run_api(tmp_path_factory.mktemp("limited"), "limited", UOOM_API_RATE_LIMIT_PER_SECOND=str(RATE_LIMIT)) as api:
        yield api


async def test_requests_over_the_rate_limit_get_429_with_retry_after(
    limited_api: ApiProcess, settings: Settings
) -> None:
    key = (await create_key(settings, "limited"))[1]
    # The key and its limit are checked before the path is parsed: 422 when admitted, 429 when not,
    # and no read-model or database work that could stretch the burst past its second of the clock.
    url = "/api/orders/not-an-order-id/status"
    async with limited_api.client(key) as c:
        started = time.monotonic()
        responses = await asyncio.gather(*[c.get(url) for _ in range(20)])
        seconds = time.monotonic() - started
    limited = [r for r in responses if r.status_code == 429]
    served = [r for r in responses if r.status_code == 422]
    assert len(limited) + len(served) == 20, [r.status_code for r in responses]
    assert limited, "no request was limited"
    # a fixed one-second window: a burst spanning k window starts may use the limit k times
    assert 1 <= len(served) <= RATE_LIMIT * (int(seconds) + 2), (len(served), seconds)
    for response in limited:
        problem = is_problem(response, 429)
        assert int(response.headers["Retry-After"]) >= 1
        assert str(RATE_LIMIT) in problem["detail"]


async def test_rate_limit_is_per_key_and_lifts_after_retry_after(limited_api: ApiProcess, settings: Settings) -> None:
    busy, quiet = (await create_key(settings, "busy"))[1], (await create_key(settings, "quiet"))[1]
    url = f"/api/orders/{uuid.uuid4()}/status"
    async with limited_api.client(busy) as b, limited_api.client(quiet) as q:
        burst = await asyncio.gather(*[b.get(url) for _ in range(20)])
        assert 429 in {r.status_code for r in burst}
        assert (await q.get(url)).status_code == 404  # another key is not held back

        async def served_again() -> bool:
            return (await b.get(url)).status_code == 404

        again, seconds = await poll(served_again, timeout=5, interval=0.1)
        assert again and seconds <= 2.5, seconds


async def test_uoom_keys_revoke_is_refused_by_the_running_api_at_once(api: ApiProcess, settings: Settings) -> None:
    name, key = await create_key(settings, "revoke-cli")
    async with api.client(key) as c:
        url = f"/api/orders/{uuid.uuid4()}/status"
        assert (await c.get(url)).status_code == 404  # known, and cached, in the API process
        revoked = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "commands", "keys", "revoke", name, "--yes"],
            capture_output=True, text=True, env=api.env, cwd=REPO,
        )  # fmt: skip
        assert revoked.returncode == 0, revoked.stderr
        started = time.monotonic()
        response = await c.get(url)
        assert response.status_code == 403, "refused only once the key cache renews, not at once"
        assert time.monotonic() - started < 0.5


RATE_LIMIT_ACROSS_WORKERS = 20


@pytest.fixture(scope="module")
def two_worker_api(demo: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with run_api(tmp_path_factory.mktemp("two-workers"), "two-workers", UOOM_API_WORKERS="2",
                 UOOM_API_RATE_LIMIT_PER_SECOND=str(RATE_LIMIT_ACROSS_WORKERS)) as api:  # fmt: skip
        yield api


async def test_a_burst_across_two_api_workers_admits_at_most_the_limit(
    two_worker_api: ApiProcess, settings: Settings
) -> None:
    key = (await create_key(settings, "two-workers"))[1]
    # The key and its limit are checked before the path is parsed: 422 when admitted, 429 when not,
    # and no read-model or database work that could stretch the burst past its second of the clock.
    url = "/api/orders/not-an-order-id/status"
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with two_worker_api.client(key, limits=limits) as c:
        await asyncio.gather(*[c.get("/healthz") for _ in range(50)])  # 50 connections, over both workers
        await asyncio.sleep(1.02 - time.time() % 1)  # start at the top of a second of the clock
        started = time.time()
        burst = await asyncio.gather(*[c.get(url) for _ in range(5 * RATE_LIMIT_ACROSS_WORKERS)])
        ended = time.time()
    # The limiter's windows are seconds of the clock: a burst that a busy machine stretches over
    # two of them may be served twice the limit, never more (two workers counting alone would serve
    # twice that: a limit each per second).
    windows = int(ended) - int(started) + 1
    statuses = [r.status_code for r in burst]
    assert set(statuses) <= {422, 429}, statuses
    served = statuses.count(422)
    print(
        f"a burst of {len(burst)} over two workers in {ended - started:.2f} s ({windows} windows): "
        f"{served} served at {RATE_LIMIT_ACROSS_WORKERS}/s"
    )
    limit = RATE_LIMIT_ACROSS_WORKERS * windows
    assert served <= limit, f"two workers served {served} in {windows} windows at {RATE_LIMIT_ACROSS_WORKERS}/s"
    assert served >= RATE_LIMIT_ACROSS_WORKERS // 2, served
