"""The local stack's DynamoDB server as `uoom stack` runs it: dynoxide when built (scripts/setup
builds it where cargo is), moto when forced; each names itself in `stack status`, and `stack down`
says what it loses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.relay_support import free_ports
from uoom.config import Settings
from uoom.provision import ensure_status_table
from uoom.stack.dynamodb import chosen_server

UOOM = [sys.executable, "-m", "commands"]


def uoom(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*UOOM, *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def own_env(tmp_path: Path) -> dict[str, str]:
    """A home of its own and a free port, so only this test's DynamoDB is started and stopped."""
    env = dict(os.environ, UOOM_HOME=str(tmp_path / "home"), DYNAMODB_ENDPOINT=f"http://127.0.0.1:{free_ports()}")
    env.pop("UOOM_DYNAMODB_ENDPOINT", None)
    env.pop("UOOM_DYNAMODB_SERVER", None)
    return env


@pytest.mark.parametrize("server", ["auto", "moto"])
def test_the_server_started_names_itself_and_down_says_its_table_is_lost(own_env: dict[str, str], server: str) -> None:
    own_env["UOOM_DYNAMODB_SERVER"] = server
    # auto: dynoxide where scripts/setup could build it (this machine kind, CI's), else moto
    expected = chosen_server(Settings(_env_file=None, dynamodb_server=server))  # type: ignore[arg-type]
    try:
        up = uoom(own_env, "stack", "up", "dynamodb")
        assert up.returncode == 0, up.stderr
        status = uoom(own_env, "stack", "status", "dynamodb")
        assert f"{expected} " in status.stdout and "(DynamoDB API)" in status.stdout, status.stdout
        settings = Settings(_env_file=None, dynamodb_endpoint=own_env["DYNAMODB_ENDPOINT"])
        asyncio.run(ensure_status_table(settings))
        down = uoom(own_env, "stack", "down", "dynamodb", "--yes")
        assert down.returncode == 0, down.stderr
        said = down.stdout + down.stderr
        assert "1 table: uoom-order-status (0 items)" in said and "LOST" in said, said
    finally:
        uoom(own_env, "stack", "down", "dynamodb", "--yes")
