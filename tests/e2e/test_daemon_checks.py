"""`uoom serve --check` and `uoom optimizer --check`, as `uoom relay --check`: exit 0 when the
running daemon says it is ok, 1 when nothing answers; and the optimizer's metrics document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import REPO, free_port, run_api, run_daemon
from tests.e2e.metrics_shape import assert_metrics_document
from uoom.config import Settings
from uoom.tokens import optimizer_token


def check(verb: str, port: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commands", verb, "--check", "--port", str(port)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_serve_check_is_0_for_a_running_api_and_1_when_nothing_listens(demo: None, tmp_path: Path) -> None:
    with run_api(tmp_path, "check") as api:
        port = int(api.url.rsplit(":", 1)[1])
        healthy = check("serve", port, api.env)
        assert healthy.returncode == 0, healthy.stderr
        assert healthy.stderr.startswith("order API ok (") and healthy.stdout == ""
    stopped = check("serve", port, api.env)
    assert stopped.returncode == 1 and stopped.stderr.startswith("order API not answering at"), stopped.stderr


def test_optimizer_check_and_its_metrics_document(demo: None, tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, UOOM_DISPATCH_INTERVAL="3600")
    url = f"http://127.0.0.1:{port}"
    with run_daemon(tmp_path / "optimizer.log", ["optimizer", "--port", str(port)], env, f"{url}/healthz"):
        order = {"orderId": "a", "pickup": {"latitude": 40.754, "longitude": -73.984},
                 "dropoff": {"latitude": 40.76, "longitude": -73.984}}  # fmt: skip
        key = {"Authorization": f"Bearer {optimizer_token(Settings())}"}
        assert httpx.post(f"{url}/optimize", json={"orders": [order]}, headers=key).status_code == 200
        document = httpx.get(f"{url}/api/metrics").json()
        prometheus = httpx.get(f"{url}/metrics").text
        healthy = check("optimizer", port, env)
    assert_metrics_document(document, "optimizer", {"postgres", "redis", "kafka"})
    section = document["optimizer"]
    assert document["latency"]["solve"]["total"] == section["batchOrders"]["total"] >= 1
    assert f"optimizer_solve_ms_count {float(document['latency']['solve']['total'])}" in prometheus.splitlines()
    assert sum(section["statuses"].values()) == section["batchOrders"]["total"]
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stderr.startswith("optimizer ok (")
    assert check("optimizer", port, env).returncode == 1
