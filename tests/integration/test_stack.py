"""`uoom stack` as an operator runs it: the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

UOOM = [sys.executable, "-m", "commands"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*UOOM, *args], capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ))


def status(env: dict[str, str] | None = None) -> dict[str, dict]:
    result = run("stack", "status", "--json", env=env)
    return {s["name"]: s for s in json.loads(result.stdout)}


def test_stack_up_twice_is_a_no_op(stack) -> None:
    before = status()
    result = run("stack", "up", "--json")
    assert result.returncode == 0, result.stderr
    after = {s["name"]: s for s in json.loads(result.stdout)}
    assert all(s["up"] for s in after.values())
    assert {n: s["pid"] for n, s in after.items()} == {n: s["pid"] for n, s in before.items()}


def test_status_json_names_every_service_with_url_and_version(stack) -> None:
    services = status()
    assert set(services) == {"postgres", "redis", "kafka", "dynamodb"}
    for s in services.values():
        assert s["up"] and s["url"] and s["version"]


@pytest.fixture
def second_stack(tmp_path: Path):
    """A second stack on other ports in its own home, torn down whatever the test does."""
    env = dict(os.environ)
    env.update(
        UOOM_HOME=str(tmp_path / "home"),
        UOOM_DATABASE_URL="postgresql://uoom@127.0.0.1:25432/uoom",
        UOOM_REDIS_URL="redis://127.0.0.1:26379/0",
        UOOM_KAFKA_BOOTSTRAP="127.0.0.1:29092",
        DYNAMODB_ENDPOINT="http://127.0.0.1:28000",
    )
    yield env
    run("stack", "down", "--yes", env=env)


def test_stack_down_stops_what_it_started_and_nothing_else(stack, second_stack: dict[str, str]) -> None:
    # Someone else's redis on a port of its own: `stack down` must leave it running.
    outsider = subprocess.Popen(
        ["redis-server", "--port", "26380", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        up = run("stack", "up", "--json", env=second_stack)
        assert up.returncode == 0, up.stderr
        started = {s["name"]: s["pid"] for s in json.loads(up.stdout)}
        assert all(started.values())
        main_before = status()

        down = run("stack", "down", "--json", env=second_stack)
        assert down.returncode == 0, down.stderr
        assert sorted(json.loads(down.stdout)["stopped"]) == sorted(started)
        for pid in started.values():
            assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
        assert outsider.poll() is None
        main_after = status()
        assert {n: (s["pid"], s["up"]) for n, s in main_after.items()} == {
            n: (s["pid"], s["up"]) for n, s in main_before.items()
        }
        assert all(s["up"] is False for s in status(second_stack).values())
    finally:
        outsider.send_signal(signal.SIGTERM)
        outsider.wait(10)


@pytest.fixture
def small_stack(tmp_path: Path):
    """PostgreSQL and Redis of a stack of their own (free ports, own home), torn down whatever happens."""
    env = dict(os.environ)
    env.update(
        UOOM_HOME=str(tmp_path / "home"),
        UOOM_DATABASE_URL=f"postgresql://uoom@127.0.0.1:{_free_port()}/uoom",
        UOOM_REDIS_URL=f"redis://127.0.0.1:{_free_port()}/0",
    )
    yield env
    run("stack", "down", "postgres", "redis", "--yes", env=env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_stack_down_asks_before_stopping_services_that_hold_data(stack, small_stack: dict[str, str]) -> None:
    up = run("stack", "up", "postgres", "redis", "--json", env=small_stack)
    assert up.returncode == 0, up.stderr
    pids = {s["name"]: s["pid"] for s in json.loads(up.stdout)}
    db, cache = small_stack["UOOM_DATABASE_URL"], small_stack["UOOM_REDIS_URL"]
    subprocess.run(["psql", db, "-qc", "CREATE TABLE t AS SELECT generate_series(1, 3) AS n"], check=True)
    subprocess.run(["redis-cli", "-u", cache, "SET", "k", "v"], check=True, capture_output=True)

    refused = run("stack", "down", "postgres", "redis", env=small_stack)
    assert refused.returncode == 2
    assert "postgres: 3 rows in 1 table of database uoom" in refused.stderr
    assert "kept, but unavailable until `uoom stack up`" in refused.stderr
    assert "redis: 1 key (1 in db0): rankings, weights, channel load: LOST when it stops" in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: refused to stop postgres, redis holding data without --yes (no terminal to ask on): "
        "run `uoom stack down postgres redis --yes`"
    )
    assert all(s["up"] for s in status(small_stack).values() if s["name"] in pids)

    down = run("stack", "down", "postgres", "redis", "--yes", "--json", env=small_stack)
    assert down.returncode == 0, down.stderr
    assert sorted(json.loads(down.stdout)["stopped"]) == ["postgres", "redis"]
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_missing_prerequisite_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        UOOM_HOME=str(tmp_path / "home"),
        UOOM_REDIS_URL="redis://127.0.0.1:26381/0",
        PATH=str(Path(sys.executable).parent),  # no redis-server on this PATH
    )
    result = run("stack", "up", "redis", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: redis-server not found: install Redis: apt-get install -y redis-server (or run scripts/setup)"
    ]
    assert "Traceback" not in result.stderr


def test_unknown_service_is_a_usage_error(tmp_path: Path) -> None:
    result = run("stack", "status", "nosuch")
    assert result.returncode == 2
    assert "unknown service nosuch" in result.stderr
