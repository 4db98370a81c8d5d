"""Where the CPU goes during a run: user+system seconds per process tree, read from /proc (a
process and all its descendants: PostgreSQL's backends, the relay's projector child)."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and its waited-for children)."""
    found: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        parent, times = int(fields[1]), sum(int(t) for t in fields[11:15])  # utime stime cutime cstime
        found[int(entry.name)] = (parent, times / TICKS)
    return found


def tree_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree that is still running; a tree stops where
    another named one starts (the daemons are the bench client's children, but are counted on
    their own)."""
    processes = _processes()
    named = set(roots.values())
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _) in processes.items():
        children[parent].append(pid)
    totals: dict[str, float] = {}
    for name, root in roots.items():
        if root not in processes:
            continue  # exited: its CPU can no longer be read
        total, pending = 0.0, [root]
        while pending:
            pid = pending.pop()
            if pid in processes:
                total += processes[pid][1]
                pending.extend(child for child in children[pid] if child not in named)
        totals[name] = total
    return totals


def stack_pids(run_dir: Path) -> dict[str, int]:
    """The local stack's services, from `uoom stack`'s pid files."""
    pids = {}
    for pidfile in sorted(run_dir.glob("*.pid")):
        lines = pidfile.read_text().split()
        if lines:
            pids[pidfile.stem] = int(lines[0])
    return pids


class CpuMeter:
    """CPU seconds each tree used between start() and stop(), as a share of one core."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self._before: dict[str, float] = {}
        self._started = 0.0

    def start(self) -> None:
        self._before, self._started = tree_seconds(self.roots), _uptime()

    def stop(self) -> dict[str, float]:
        after, elapsed = tree_seconds(self.roots), _uptime() - self._started
        # a tree whose root exited during the run is left out: what it used is gone with it
        return {name: round((after[name] - self._before[name]) / elapsed, 3) for name in after if name in self._before}


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


DAEMON_VERBS = {"serve": "api", "relay": "relay", "optimizer": "optimizer", "up": "up"}


def daemon_pids() -> dict[str, int]:
    """The uoom daemons running on this machine, found by their command line (`uoom serve`,
    `python -m commands relay`, ...): name -> pid, e.g. `api 1234`. A `uoom up` supervisor's
    daemons are its children and are counted on their own."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        name = _daemon_name(argv)
        if name is not None:
            found[f"{name} {entry.name}"] = int(entry.name)
    return dict(sorted(found.items()))


def _daemon_name(argv: list[str]) -> str | None:
    """'api' for [python, -m, commands, serve, ...] or [.../uoom, serve, ...]; None otherwise."""
    for at, word in enumerate(argv[:-1]):
        launcher = word == "commands" and at > 0 and argv[at - 1] == "-m"
        if (launcher or Path(word).name == "uoom") and argv[at + 1] in DAEMON_VERBS:
            if "--check" in argv:  # a health probe, not a daemon
                return None
            return DAEMON_VERBS[argv[at + 1]]
    return None


def platform_pids(run_dir: Path) -> dict[str, int]:
    """Everything that serves a local platform: the stack's services and the uoom daemons."""
    return {**stack_pids(run_dir), **daemon_pids()}
