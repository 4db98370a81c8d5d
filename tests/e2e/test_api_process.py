"""`uoom serve` as an operator runs it: graceful stop on SIGTERM, a clear failure at start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import REPO, create_key, free_port, order_body, run_api
from uoom.config import Settings


class SilentOptimizer:
    """Accepts connections and never answers; `called` is set when the API's call arrives."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.called = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.called.set()

    def close(self) -> None:
        for s in [self.listener, *self.conns]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def silent_optimizer() -> Iterator[SilentOptimizer]:
    optimizer = SilentOptimizer()
    yield optimizer
    optimizer.close()


async def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(
    silent_optimizer: SilentOptimizer, settings: Settings, demo: None, tmp_path: Path
) -> None:
    key = (await create_key(settings, "sigterm"))[1]
    with run_api(tmp_path, "sigterm", UOOM_OPTIMIZER_URL=silent_optimizer.url,
                 UOOM_OPTIMIZER_TIMEOUT_MS="1500") as api:  # fmt: skip
        async with api.client(key, timeout=20) as client:
            in_flight = asyncio.create_task(client.post("/api/orders", json=order_body()))
            assert await asyncio.to_thread(silent_optimizer.called.wait, 10), "the request never reached assignment"
            api.proc.send_signal(signal.SIGTERM)
            response = await in_flight  # waits out the 1.5 s optimizer timeout, then falls back
            assert response.status_code == 201, response.text
            assert response.json()["assignmentSource"] != "optimizer"
        returncode = await asyncio.to_thread(api.proc.wait, 15)
        # uvicorn re-raises the signal it caught once it has shut down gracefully
        assert returncode in (0, -signal.SIGTERM), api.log_tail()
        assert "Traceback" not in api.log_tail()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{api.url}/healthz", timeout=2)


def test_serve_without_a_database_exits_1_quickly_with_one_line_naming_the_problem(tmp_path: Path) -> None:
    """README: exit code 1 when an operation fails; known failures are one line (no traceback
    unless UOOM_DEBUG=1)."""
    env = dict(os.environ, UOOM_DATABASE_URL=f"postgresql://uoom@127.0.0.1:{free_port()}/uoom_test")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "commands", "serve", "--port", str(free_port())],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert time.monotonic() - started < 20
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert "postgres" in result.stderr.lower() or "database" in result.stderr.lower(), result.stderr
