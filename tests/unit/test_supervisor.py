"""The `uoom up` supervisor with real child processes (plain Python, no service)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from daemons.supervisor import DaemonSpec, Supervisor


async def test_a_crashing_daemon_is_restarted_and_reported() -> None:
    lines: list[tuple[str, str]] = []
    spec = DaemonSpec("crashy", [sys.executable, "-c", "print('hello'); raise SystemExit(3)"])
    sup = Supervisor([spec], lambda name, line: lines.append((name, line)), max_backoff=0.1)
    sup_task = asyncio.create_task(sup.run())
    for _ in range(100):
        if sup.restarts.get("crashy", 0) >= 2:
            break
        await asyncio.sleep(0.05)
    sup.stop()
    assert await sup_task == 0
    assert sup.restarts["crashy"] >= 2
    assert ("crashy", "hello") in lines
    assert any(name == "crashy" and "exited with 3; restarting" in line for name, line in lines)


async def test_stop_lets_a_daemon_finish_its_work(tmp_path: Path) -> None:
    marker = tmp_path / "drained"
    # The child takes SIGTERM as "finish the batch in flight, then exit".
    code = (
        "import signal, sys, time, pathlib\n"
        "def drain(*_):\n"
        "    time.sleep(0.3); pathlib.Path(sys.argv[1]).write_text('ok'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, drain)\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    lines: list[tuple[str, str]] = []
    spec = DaemonSpec("worker", [sys.executable, "-c", code, str(marker)])
    sup = Supervisor([spec], lambda name, line: lines.append((name, line)), grace_seconds=5)
    sup_task = asyncio.create_task(sup.run())
    for _ in range(100):
        if ("worker", "ready") in lines:
            break
        await asyncio.sleep(0.05)
    sup.stop()
    await asyncio.wait_for(sup_task, 10)
    assert marker.read_text() == "ok"
    assert ("worker", "stopped (exit 0)") in lines
    assert "worker" not in sup.restarts


async def test_a_daemon_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    code = "\n".join(
        [
            "import signal, time",
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
            "print('up', flush=True)",
            "time.sleep(60)",
        ]
    )
    lines: list[tuple[str, str]] = []
    sup = Supervisor(
        [DaemonSpec("stubborn", [sys.executable, "-c", code])],
        lambda name, line: lines.append((name, line)),
        grace_seconds=0.5,
    )
    sup_task = asyncio.create_task(sup.run())
    for _ in range(100):
        if ("stubborn", "up") in lines:
            break
        await asyncio.sleep(0.05)
    sup.stop()
    await asyncio.wait_for(sup_task, 10)
    assert any("did not stop within" in line for _, line in lines)
