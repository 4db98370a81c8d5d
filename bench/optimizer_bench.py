"""Dispatch benchmark: the synthetic day under its rules (trips, fees, the cut-off), and solve times.

    .venv/bin/python bench/optimizer_bench.py [--day PATH] [--quick] [--report STEM] [--only day|timing]

Part 1 replays the synthetic day (uoom/replay/synthetic-day.json: 6,000 orders, seeded) under every policy
(static, greedy, greedy with joins, dispatch at once, 60 s batches with trips, rolling with fees and
the cut-off; the weighted ones also with cost-only weights) and checks each day's books. Part 2
times `dispatch()` with trips (1 order x 8 channels, 200 x 12) against an exact solve, and `solve()`
(the min-cost flow) on pure assignments against CP-SAT's optimum. Writes STEM.md and STEM.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import pure, timing  # noqa: E402
from bench.dispatch.report import render  # noqa: E402
from uoom.assignment import Weights  # noqa: E402
from uoom.assignment.trips import Bundling  # noqa: E402
from uoom.replay.books import Rules  # noqa: E402
from uoom.replay.day import SYNTHETIC_DAY, day_channels, generate, twelve_channels  # noqa: E402
from uoom.replay.policies import COST_ONLY, replay  # noqa: E402

POLICIES = ["static", "greedy", "greedy+joins", "at-once", "batch", "rolling", "in-time", "in-time-alone"]
# the policies the weights steer: run again with cost-only weights
WEIGHTED = ["at-once", "batch", "rolling", "in-time", "in-time-alone"]
LABELS = {  # the rows of the report
    "static": "static",
    "greedy": "greedy",
    "greedy+joins": "greedy + joins",
    "at-once": "at once (dispatch() per order, trips + joins): the product",
    "batch": "batch 60 s with trips (exact)",
    "rolling": "rolling (at once + re-optimization every 2 min, the daemon's rules)",
    "in-time": "in time (held until 8 min before ready, then placed by rounds every 30 s, with pairs and joins): "
    "dispatch_policy=in-time",
    "in-time-alone": "in time, the due orders placed alone (the rounds when no channel bundles)",
}


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "ortools": version("ortools"),
        "platform": platform.platform(),
        "loadavg": list(os.getloadavg()),
    }


def replay_all(day: dict[str, Any], orders: list[Any], weights: Weights, penalty: float) -> dict[str, Any]:
    rules, eight = Rules.of_day(day), day_channels(day)
    runs = [(p, w, label) for p in POLICIES for w, label in [(weights, "default"), (COST_ONLY, "cost-only")]
            if label == "default" or p in WEIGHTED]  # fmt: skip
    replayed = {}
    for policy, w, label in runs:
        name = f"{LABELS[policy]}, {label} weights" if policy in WEIGHTED else LABELS[policy]
        print(f"replaying: {name}", file=sys.stderr)
        s = replay(policy, orders, eight, rules, w, penalty, day["static_priority"], scored_with=weights)
        s["solve_ms"] = pure.percentiles(s["solve_ms"])
        replayed[name] = s
    base, cheap = replayed["static"], replayed["greedy"]
    key = "dollars_per_delivered_with_penalties"
    relative = {
        name: {"vs_static": s[key] / base[key] - 1, "vs_greedy": s[key] / cheap[key] - 1}
        for name, s in replayed.items()
        if name != "static"
    }
    return {"replay": replayed, "relative": relative}


def time_all(day: dict[str, Any], orders: list[Any], weights: Weights, penalty: float, quick: bool) -> dict[str, Any]:
    eight = day_channels(day)
    twelve = twelve_channels(eight)
    rules = Rules.of_day(day)
    # The derived channels of bundling channels bundle too (the same couriers, another contract).
    bundling = Bundling(rules.bundling | {f"{c}-2" for c in rules.bundling}, rules.ready_within_s, rules.on_time_s)
    trips = []
    for k, (n, chans, deadline, samples) in enumerate(
        [(1, eight, 5.0, 300 if quick else 3000), (200, twelve, 50.0, 20 if quick else 200)]
    ):
        print(f"timing dispatch() with trips: {n} x {len(chans)} x {samples}", file=sys.stderr)
        instances = timing.cases(orders, chans, bundling, n, samples, day["seed"] + 100 + k)
        name = f"{n} x {len(chans)}, trips"
        trips.append(timing.time_trips(name, instances, weights, penalty, bundling, deadline, deadline))
    families = [
        (pure.Family("1 order x 8", 1, False, "any", 5.0), 300 if quick else 3000),
        (pure.Family("50 x 8, tight", 50, False, "tight", 30.0), 60 if quick else 300),
        (pure.Family("200 x 12, tight", 200, True, "tight", 50.0), 30 if quick else 200),
        (pure.Family("200 x 12, loose", 200, True, "loose", 50.0), 20 if quick else 100),
    ]
    timings = []
    for k, (family, samples) in enumerate(families):
        print(f"timing solve(): {family.name} x {samples}", file=sys.stderr)
        cases = pure.cases_of(family, samples, orders, twelve if family.twelve else eight, day["seed"] + k + 1)
        timings.append(pure.time_family(family, cases, weights, penalty))
    return {"trips_timing": trips, "timings": timings}


PARTS = {"day": ("replay", "relative"), "timing": ("trips_timing", "timings")}


def previous(stem: Path, only: str | None, day: dict[str, Any], quick: bool) -> dict[str, Any]:
    """With --only, the report the part goes into (the other part's numbers stay, with their run)."""
    path = stem.with_suffix(".json")
    if not only or not path.exists():
        return {}
    report: dict[str, Any] = json.loads(path.read_text())
    if (report.get("seed"), report.get("quick")) != (day["seed"], quick):
        raise SystemExit(f"{path} is of another day or --quick setting: run both parts (no --only)")
    if "runs" not in report:  # written before reports kept one run per part
        old = {k: report.get(k) for k in ("when", "command", "run_s", "loadavg_end")}
        report["runs"] = {part: {**old, "loadavg": report["machine"]["loadavg"]} for part in PARTS}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--day", type=Path, default=SYNTHETIC_DAY, help="the day file")
    parser.add_argument("--quick", action="store_true", help="fewer solve-time samples")
    parser.add_argument("--report", type=Path, default=None, help="report path without suffix")
    parser.add_argument(
        "--only", choices=sorted(PARTS), help="run one part; its numbers replace that part's in the existing report"
    )
    args = parser.parse_args(argv)
    stem = args.report or ROOT / "bench" / "reports" / ("optimizer-quick" if args.quick else "optimizer")
    info = machine()
    day = json.loads(args.day.read_text())
    weights, penalty = Weights(**day["default_weights"]), float(day["fallback_penalty"])
    orders = generate(day)
    command = " ".join([Path(sys.executable).name, *(sys.argv if argv is None else ["optimizer_bench.py", *argv])])
    print(f"machine: {info}\ncommand: {command}", file=sys.stderr)
    previous(stem, args.only, day, args.quick)  # fail now, not after the run, if the parts cannot go together
    fresh: dict[str, Any] = {}
    runs: dict[str, Any] = {}
    for part in [args.only] if args.only else list(PARTS):
        began, load = time.perf_counter(), list(os.getloadavg())
        when = datetime.now(UTC).isoformat(timespec="seconds")
        if part == "day":
            fresh.update(replay_all(day, orders, weights, penalty))
        else:
            fresh.update(time_all(day, orders, weights, penalty, args.quick))
        runs[part] = {"when": when, "command": command, "loadavg": load, "loadavg_end": list(os.getloadavg()),
                      "run_s": time.perf_counter() - began}  # fmt: skip
    # Read at the end: another part's run that finished meanwhile (`--only`) is kept.
    report = previous(stem, args.only, day, args.quick)
    report.update(
        {
            "machine": info,
            "day": str(args.day.resolve().relative_to(ROOT))
            if args.day.resolve().is_relative_to(ROOT)
            else str(args.day),
            "seed": day["seed"],
            "orders": len(orders),
            "quick": args.quick,
            "channels": [c["id"] for c in day["channels"]],
        }
    )
    report.update(fresh)
    report["runs"] = {**report.get("runs", {}), **runs}
    for stale in ("when", "command", "loadavg_end", "run_s"):  # now per part, in runs
        report.pop(stale, None)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    text = render(report)
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
