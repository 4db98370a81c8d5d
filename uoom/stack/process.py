"""Detached child processes tracked by pid files, so `stack down` stops only what it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any


def spawn(cmd: list[str], log: Path, pidfile: Path, user: str | None = None) -> int:
    """Start `cmd` in its own session (it outlives the CLI) with output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user(user),
        )
    pidfile.write_text(f"{proc.pid}\n{_start_ticks(proc.pid)}\n")
    return proc.pid


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that drop root to `user`, its group too: with root's groups kept,
    group permission bits (not "other") decide access to root-owned folders such as mktemp's."""
    return {"user": user, "group": user, "extra_groups": []} if user else {}


def _start_ticks(pid: int) -> str:
    """The process start time in clock ticks since boot: unlike a pid, never reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    return "" if fields[0] == "Z" else fields[19]


def tracked_pid(pidfile: Path) -> int | None:
    """The pid in `pidfile` if that very process (same start time) is still alive."""
    try:
        pid_text, ticks = ([*pidfile.read_text().splitlines(), ""])[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    current = _start_ticks(pid)
    # A recycled pid has another start time: it belongs to someone else, never signal it.
    if not current or current != ticks:
        return None
    return pid


def stop(pidfile: Path, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Signal the tracked process, wait for it to exit, SIGKILL after `timeout`."""
    pid = tracked_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tracked_pid(pidfile) is None:
            break
        _reap(pid)
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    pidfile.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (same CLI run)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
