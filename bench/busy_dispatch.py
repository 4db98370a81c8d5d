"""dispatch() on the live optimizer's batches when restaurants are busy: a few orders per batch (the
API asks one order per create; the batcher's 2 ms window gathers a few), the demo's 15 restaurants,
K open trips per restaurant (single orders on bundling channels waiting for a joiner, as the
platform benchmark's 100 creates/s leave them), the API's 80 ms deadline. Each case twice: with
each order's joins cut to as many as the batch has orders (`_best_joins`, exact), and with every
join (the cut switched off), on the same instances. Wall and CPU per solve, and which solver
answered (priced: the Lagrangian pricing and min-cost flows; cpsat: CP-SAT searched).

    .venv/bin/python -m bench.busy_dispatch [--samples 100] [--open 5,25]
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from uoom import demo
from uoom.assignment import Bundling, Channel, TripOrder, Weights, dispatch
from uoom.assignment.dispatch import OpenTrip
from uoom.loadgen.scenarios import order_body

REPORT = Path(__file__).resolve().parent / "reports" / "busy-dispatch.md"
DEADLINE_MS = 80.0  # the API's 100 ms timeout less its 20 ms margin
SIZES = (2, 3, 5, 8, 12)
dispatch_module = importlib.import_module("uoom.assignment.dispatch")  # the package's `dispatch` is the function
best_joins = dispatch_module._best_joins


def instances(per_restaurant: int, size: int, samples: int, seed: int) -> list[tuple[list[TripOrder], list[OpenTrip]]]:
    rng = random.Random(seed)
    places = {str(r[0]): r for r in demo.restaurants()}
    bundlers = [c for c in channels() if c.bundles]

    def order(i: int, age_s: float) -> TripOrder:
        body = order_body(i)
        rid, _, lat, lon = places[body["restaurantId"]]
        to = body["deliveryAddress"]
        return TripOrder(f"o{i}", str(rid), (lat, lon), (to["latitude"], to["longitude"]), 900.0 - age_s, age_s)

    out = []
    for _ in range(samples):
        trips = []
        for n in range(len(places) * per_restaurant):
            age = rng.uniform(0, 120)
            c = rng.choice(bundlers)
            trips.append(OpenTrip(f"t{n}", c.id, order(10**6 + n, age), c.pickup_latency_min * 60.0 - age))
        out.append(([order(rng.randrange(10**6), 0.0) for _ in range(size)], trips))
    return out


def channels() -> list[Channel]:
    return [Channel(*c[:10], bundles=c[10]) for c in demo.CHANNELS]  # type: ignore[arg-type]


def timed(cases: list[tuple[list[TripOrder], list[OpenTrip]]]) -> dict[str, object]:
    chans = channels()
    bundling = Bundling(frozenset(c.id for c in chans if c.bundles), 300.0, 2700.0)
    walls, cpu, kinds, objectives = [], [], Counter[str](), []
    for orders, trips in cases:
        start, start_cpu = time.perf_counter(), time.process_time()
        plan = dispatch(orders, chans, Weights(), bundling=bundling, open_trips=trips, deadline_ms=DEADLINE_MS)
        walls.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        kinds[plan.formulation] += 1
        objectives.append(plan.objective)
    walls.sort()
    cpu.sort()
    return {"p50": walls[len(walls) // 2], "p99": walls[min(len(walls) - 1, len(walls) * 99 // 100)],
            "max": walls[-1], "cpu_p99": cpu[min(len(cpu) - 1, len(cpu) * 99 // 100)], "kinds": dict(kinds),
            "misses": sum(w > DEADLINE_MS for w in walls), "objectives": objectives}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="instances per case")
    parser.add_argument("--open", default="5,25", help="open trips per restaurant, comma-separated")
    args = parser.parse_args()
    lines = [
        "# busy-dispatch",
        "",
        f"- when: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- {args.samples} instances per case, deadline {DEADLINE_MS:.0f} ms; wall and CPU per dispatch() in ms",
        "",
        "| open trips per restaurant | orders | joins kept | P50 | P99 | max | CPU P99 | over deadline | answered by |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for per in (int(x) for x in args.open.split(",")):
        for size in SIZES:
            cases = instances(per, size, args.samples, seed=1000 * per + size)
            results = {}
            for label, cut in (("every", lambda joins, keep: joins), ("the best", best_joins)):
                setattr(dispatch_module, "_best_joins", cut)  # noqa: B010 - the module's private rule, switched
                results[label] = r = timed(cases)
                kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items()))  # type: ignore[attr-defined]
                lines.append(f"| {per} | {size} | {label} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | "
                             f"{r['cpu_p99']:.1f} | {r['misses']} | {kinds} |")  # fmt: skip
            setattr(dispatch_module, "_best_joins", best_joins)  # noqa: B010
            print(lines[-2], lines[-1], sep="\n", flush=True)
            if results["every"]["objectives"] != results["the best"]["objectives"]:
                print(f"note: objectives differ ({per} open, {size} orders): a solve cut short by the deadline")
    REPORT.write_text("\n".join(lines) + "\n")
    print(f"report: {REPORT}")


if __name__ == "__main__":
    main()
