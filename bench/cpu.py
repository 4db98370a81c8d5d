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
    """CPU seconds so far of each named process tree; a tree stops where another named one starts
    (the daemons are the bench client's children, but are counted on their own)."""
    processes = _processes()
    named = set(roots.values())
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _) in processes.items():
        children[parent].append(pid)
    totals: dict[str, float] = {}
    for name, root in roots.items():
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
        return {name: round((after[name] - self._before.get(name, 0.0)) / elapsed, 3) for name in self.roots}


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])
