"""Start-up time of the CLI: wall clock and CPU (user + sys) of `uoom --help` and `uoom channels
list`, each run N times in a fresh process, interleaved; min and median (the min is the least
disturbed by other work on a shared machine, the CPU time the least by a busy scheduler).

    .venv/bin/python -m bench.cli_startup [--runs 10] [--tree PATH ...]

`--tree` measures the CLI of other checkouts too (e.g. `git archive OLD | tar -x -C /tmp/old`), with
this interpreter, side by side. `channels list` needs a migrated database (UOOM_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {"--help": ["--help"], "channels list": ["channels", "list"]}


def run_once(tree: Path, args: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "commands", *args], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tree", type=Path, action="append", default=[])
    options = parser.parse_args()
    trees = [Path(__file__).resolve().parents[1], *options.tree]
    samples: dict[tuple[str, Path], list[tuple[float, float]]] = {(c, t): [] for c in CASES for t in trees}
    for _ in range(options.runs):
        for case, args in CASES.items():
            for tree in trees:
                samples[(case, tree)].append(run_once(tree, args))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, {options.runs} runs each")
    for (case, tree), runs in samples.items():
        wall, cpu = [w for w, _ in runs], [c for _, c in runs]
        print(f"uoom {case:14} {tree!s:24} wall min {min(wall) * 1000:4.0f} ms median "
              f"{statistics.median(wall) * 1000:4.0f} ms | CPU min {min(cpu) * 1000:4.0f} ms median "
              f"{statistics.median(cpu) * 1000:4.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
