"""The `uoom up` supervisor with real child processes (plain Python, no service)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from daemons.supervisor import DaemonSpec, Supervisor


def recorder() -> tuple[list[tuple[str, str]], Callable[[str, str], None]]:
    lines: list[tuple[str, str]] = []
    return lines, lambda name, line: lines.append((name, line))


async def run_until(sup: Supervisor, done: Callable[[], bool], within: float = 5.0) -> int:
    """Run the supervisor until `done()` (or `within` seconds), then stop it as Ctrl-C would."""
    task = asyncio.create_task(sup.run())
    for _ in range(int(within / 0.05)):
        if done():
            break
        await asyncio.sleep(0.05)
    sup.stop()
    return await asyncio.wait_for(task, 10)


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


async def test_a_crashing_daemon_is_restarted_and_reported() -> None:
    lines, say = recorder()
    sup = Supervisor([DaemonSpec("crashy", python("print('hello'); raise SystemExit(3)"))], say, max_backoff=0.1)
    assert await run_until(sup, lambda: sup.restarts.get("crashy", 0) >= 2) == 0
    assert sup.restarts["crashy"] >= 2
    assert ("crashy", "hello") in lines
    assert any(name == "crashy" and "exited with 3; restarting" in line for name, line in lines)


async def test_stop_lets_a_daemon_finish_its_work_and_a_clean_exit_reads_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "drained"
    # The child takes SIGTERM as "finish the batch in flight, then exit 0".
    code = (
        "import signal, sys, time, pathlib\n"
        "def drain(*_):\n"
        "    time.sleep(0.3); pathlib.Path(sys.argv[1]).write_text('ok'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, drain)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    lines, say = recorder()
    sup = Supervisor([DaemonSpec("worker", python(code, str(marker)))], say, grace_seconds=5)
    await run_until(sup, lambda: ("worker", "ready") in lines)
    assert marker.read_text() == "ok"
    assert ("worker", "stopped") in lines
    assert "worker" not in sup.restarts


async def test_a_daemon_dying_of_the_stop_signal_is_not_reported_as_a_clean_stop() -> None:
    lines, say = recorder()
    code = "import time\nprint('up', flush=True)\ntime.sleep(60)"  # default SIGTERM action: die
    sup = Supervisor([DaemonSpec("plain", python(code))], say)
    await run_until(sup, lambda: ("plain", "up") in lines)
    assert ("plain", "stopped, killed by SIGTERM") in lines


async def test_a_daemon_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"
    lines, say = recorder()
    sup = Supervisor([DaemonSpec("stubborn", python(code))], say, grace_seconds=0.5)
    await run_until(sup, lambda: ("stubborn", "up") in lines)
    assert any("did not stop within" in line for _, line in lines)
    assert ("stubborn", "stopped, killed by SIGKILL") in lines


async def test_readiness_is_announced_once_with_the_url() -> None:
    answers = iter([(False, "starting"), (False, "starting"), (True, "ok")])

    async def ready() -> tuple[bool, str]:
        return next(answers, (True, "ok"))

    lines, say = recorder()
    spec = DaemonSpec("api", python("import time; time.sleep(60)"), "http://127.0.0.1:3001", ready=ready)
    sup = Supervisor([spec], say, ready_poll=0.01)
    await run_until(sup, lambda: ("up", "every daemon is ready") in lines)
    ready_lines = [line for name, line in lines if name == "api" and "ready" in line]
    assert len(ready_lines) == 1 and ready_lines[0].startswith("ready at http://127.0.0.1:3001 in ")
    assert ("up", "every daemon is ready") in lines


async def test_a_daemon_not_ready_in_time_is_reported_with_the_reason() -> None:
    async def never() -> tuple[bool, str]:
        return False, "optimizer degraded: redis down"

    lines, say = recorder()
    spec = DaemonSpec("optimizer", python("import time; time.sleep(60)"), "u", ready=never)
    sup = Supervisor([spec], say, ready_within=0.2, ready_poll=0.01)
    await run_until(sup, lambda: any("not ready" in line for _, line in lines))
    assert ("optimizer", "not ready after 0.2 s: optimizer degraded: redis down") in lines
    assert ("up", "every daemon is ready") not in lines
