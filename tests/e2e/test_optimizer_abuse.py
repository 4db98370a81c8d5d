"""`POST /optimize` under abuse, the optimizer as a process: only a caller with the optimizer's key
gets a solve, the body is bounded (413), the queue is bounded (a quick 503 when full), nothing is
solved for a caller that hung up, and no CP-SAT time goes to one whose deadline passed while it
waited (the greedy rule answers it at once)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import free_port, order_body, run_api, run_daemon
from uoom.tokens import TOKEN_FILE

WINDOW_MS = 1000  # every request waits this long for its batch: time to fill the queue, to hang up
PATIENT = 3000  # deadlineMs of the requests meant to be solved: the window counts toward it
MAX_QUEUED = 500
MAX_BODY = 65536


@contextlib.contextmanager
def optimizer(log_dir: Path, home: Path, **env: str) -> Iterator[str]:
    """`uoom optimizer` on a free port with UOOM_HOME `home` (where the shared key lives)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full = dict(os.environ, UOOM_HOME=str(home), UOOM_DISPATCH_INTERVAL="3600", **env)
    if "UOOM_OPTIMIZER_TOKEN" not in env:  # the key shared through `home`
        full.pop("UOOM_OPTIMIZER_TOKEN", None)
    with run_daemon(log_dir / f"optimizer-{port}.log", ["optimizer", "--port", str(port)], full, f"{url}/healthz"):
        yield url


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def slow_optimizer(demo: None, home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"UOOM_OPTIMIZER_BATCH_WINDOW_MS": str(WINDOW_MS), "UOOM_OPTIMIZER_MAX_QUEUED_ORDERS": str(MAX_QUEUED),
           "UOOM_OPTIMIZER_MAX_BODY_BYTES": str(MAX_BODY)}  # fmt: skip
    with optimizer(tmp_path_factory.mktemp("optimizer"), home, **env) as url:
        yield url


def key_in(home: Path) -> str:
    return (home / TOKEN_FILE).read_text().strip()


def request(n: int, prefix: str = "o", deadline_ms: int = PATIENT) -> dict[str, Any]:
    return {"orders": orders(n, prefix), "deadlineMs": deadline_ms}


def orders(n: int, prefix: str = "o") -> list[dict[str, Any]]:
    return [{"orderId": f"{prefix}{i}", "pickup": {"latitude": 40.754, "longitude": -73.984},
             "dropoff": {"latitude": 40.754 + (i % 40) / 1000, "longitude": -73.984}, "readyAt": 300}
            for i in range(n)]  # fmt: skip


def section(url: str) -> dict[str, Any]:
    metrics: dict[str, Any] = httpx.get(f"{url}/api/metrics").json()["optimizer"]
    return metrics


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


# --- the key ------------------------------------------------------------------------------------


def test_only_a_caller_with_the_optimizers_key_gets_a_solve(slow_optimizer: str, home: Path) -> None:
    key = key_in(home)
    assert len(key) >= 40
    assert stat.S_IMODE((home / TOKEN_FILE).stat().st_mode) == 0o600
    before = section(slow_optimizer)["batchOrders"]["total"]
    body = request(1)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {key[:-1]}"},
                    {"Authorization": f"Bearer {key}x"}, {"Authorization": f"Basic {key}"},
                    {"Authorization": "Bearer"}, {"X-API-Key": key}, {"Authorization": key}):  # fmt: skip
        refused = httpx.post(f"{slow_optimizer}/optimize", json=body, headers=headers)
        assert problem(refused, 401)["detail"].startswith("send the optimizer's key"), headers
        assert refused.headers["www-authenticate"] == "Bearer"
    answered = httpx.post(f"{slow_optimizer}/optimize", json=body, headers={"Authorization": f"Bearer {key}"})
    assert answered.status_code == 200, answered.text
    assert section(slow_optimizer)["batchOrders"]["total"] == before + 1  # the refused ones cost no solve


def test_a_key_set_in_the_environment_replaces_the_shared_one(demo: None, home: Path, tmp_path: Path) -> None:
    with optimizer(tmp_path, home, UOOM_OPTIMIZER_TOKEN="set-by-the-operator-0123456789") as url:
        body = {"orders": orders(1)}
        assert (
            httpx.post(
                f"{url}/optimize", json=body, headers={"Authorization": "Bearer set-by-the-operator-0123456789"}
            ).status_code
            == 200
        )
        problem(httpx.post(f"{url}/optimize", json=body, headers={"Authorization": f"Bearer {key_in(home)}"}), 401)


async def test_the_api_and_the_optimizer_share_their_key_out_of_the_box(
    demo: None, api_key: str, tmp_path: Path
) -> None:
    """No UOOM_OPTIMIZER_TOKEN anywhere, a fresh UOOM_HOME: `uoom up` as a newcomer runs it."""
    fresh = tmp_path / "home"
    with optimizer(tmp_path, fresh) as url, run_api(tmp_path, "shared-key", UOOM_HOME=str(fresh),
                                                    UOOM_OPTIMIZER_URL=url) as api:  # fmt: skip
        async with api.client(api_key) as client:
            created = await client.post("/api/orders", json=order_body())
    assert created.status_code == 201, created.text
    assert created.json()["assignmentSource"] == "optimizer"


# --- the body, the queue, callers that gave up ----------------------------------------------------


def test_a_body_over_the_limit_is_413_whether_declared_or_chunked(slow_optimizer: str, home: Path) -> None:
    auth = {"Authorization": f"Bearer {key_in(home)}", "Content-Type": "application/json"}
    big = httpx.Request("POST", "/", json={"orders": orders(500)}).content
    assert len(big) > MAX_BODY
    for headers in (auth, {"Content-Type": "application/json"}):  # the limit holds before the key is checked
        refused = httpx.post(f"{slow_optimizer}/optimize", content=big, headers=headers)
        assert str(MAX_BODY) in problem(refused, 413)["detail"]

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    problem(httpx.post(f"{slow_optimizer}/optimize", content=chunks(), headers=auth), 413)


async def test_a_full_queue_answers_503_at_once_and_the_queued_requests_are_solved(
    slow_optimizer: str, home: Path
) -> None:
    auth = {"Authorization": f"Bearer {key_in(home)}"}
    async with httpx.AsyncClient(base_url=slow_optimizer, headers=auth, timeout=30) as client:
        first = asyncio.create_task(client.post("/optimize", json=request(250, "a")))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(client.post("/optimize", json=request(250, "b")))
        await asyncio.sleep(0.1)  # both wait for the window to close: the queue holds 500 orders
        started = time.monotonic()
        refused = await client.post("/optimize", json=request(1, "c"))
        refused_in = time.monotonic() - started
        answers = await asyncio.gather(first, second)
    body = problem(refused, 503)
    assert refused.headers["retry-after"] == "1" and "wait for a solve" in body["detail"], body
    assert refused_in < 0.5, f"the refusal took {refused_in:.2f} s: it waited in the queue"
    assert [a.status_code for a in answers] == [200, 200]
    assert [len(a.json()["assignments"]) for a in answers] == [250, 250]
    assert section(slow_optimizer)["shed"]["full"] >= 1


async def test_nothing_is_solved_for_a_caller_that_hung_up(slow_optimizer: str, home: Path) -> None:
    auth = {"Authorization": f"Bearer {key_in(home)}"}
    before = section(slow_optimizer)
    async with httpx.AsyncClient(base_url=slow_optimizer, headers=auth, timeout=0.3) as impatient:
        with pytest.raises(httpx.TimeoutException):  # gives up while its batch is still gathering
            await impatient.post("/optimize", json=request(7, "gone"))
    async with httpx.AsyncClient(base_url=slow_optimizer, headers=auth, timeout=30) as patient:
        answer = await patient.post("/optimize", json=request(1, "here"))
    assert answer.status_code == 200, answer.text
    await asyncio.sleep(0.2)
    after = section(slow_optimizer)
    assert after["shed"]["gone"] - before["shed"]["gone"] == 7
    assert after["batchOrders"]["total"] - before["batchOrders"]["total"] == 1, "solved for a caller that had gone"


def test_a_request_whose_deadline_passed_in_the_queue_gets_the_greedy_answer_not_cp_sat_time(
    slow_optimizer: str, home: Path
) -> None:
    auth = {"Authorization": f"Bearer {key_in(home)}"}
    before = section(slow_optimizer)
    late = httpx.post(f"{slow_optimizer}/optimize", json=request(3, "late", deadline_ms=200), headers=auth,
                      timeout=30)  # fmt: skip
    assert late.status_code == 200, late.text
    answer = late.json()
    assert [a["orderId"] for a in answer["assignments"]] == ["late0", "late1", "late2"]
    assert answer["status"] in ("FALLBACK", "OPTIMAL")  # OPTIMAL only when nothing is contested
    after = section(slow_optimizer)
    assert after["shed"]["late"] - before["shed"]["late"] == 3
    assert after["statuses"].get("FEASIBLE", 0) == before["statuses"].get("FEASIBLE", 0)
