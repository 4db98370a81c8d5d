"""Wall clock of `solve()` on pure assignments (the min-cost flow), checked against CP-SAT's optimum."""

from __future__ import annotations

import gc
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from uoom.assignment import Channel, Delivery, Weights, greedy, solve
from uoom.assignment.costs import build_cost_table, objective
from uoom.assignment.cpsat import cpsat_choice
from uoom.replay.day import SimOrder

CPSAT_LIMIT_S = 10.0


def pct(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else float("nan")


def percentiles(values: Sequence[float]) -> dict[str, float]:
    xs = sorted(values)
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "mean": sum(xs) / len(xs),
        "p50": pct(xs, 50),
        "p95": pct(xs, 95),
        "p99": pct(xs, 99),
        "max": xs[-1],
    }


@dataclass(frozen=True)
class Family:
    name: str
    orders: int
    twelve: bool
    loads: str  # "tight": 1..2n/m free slots per channel; "loose": up to half full; "any": 0..capacity
    target_ms: float | None


Cases = list[tuple[list[Delivery], list[Channel]]]


def cases_of(family: Family, samples: int, day_orders: list[SimOrder], channels: list[Channel], seed: int) -> Cases:
    """Windows of consecutive orders of the day (ready times relative to the first one) and loads."""
    rng = random.Random(seed)
    out = []
    for _ in range(samples):
        start = rng.randrange(len(day_orders) - family.orders)
        window = day_orders[start : start + family.orders]
        now = window[0].created
        orders = [Delivery(o.order_id, o.pickup, o.dropoff, o.value, max(o.ready - now, 0.0)) for o in window]
        loaded = []
        for c in channels:
            if family.loads == "tight":
                load = max(c.capacity - rng.randint(1, max(2, 2 * family.orders // len(channels))), 0)
            elif family.loads == "loose":
                load = rng.randint(0, c.capacity // 2)
            else:
                load = rng.randint(0, c.capacity)
            loaded.append(replace(c, load=load))
        out.append((orders, loaded))
    return out


def time_family(family: Family, cases: Cases, weights: Weights, penalty: float) -> dict[str, Any]:
    """`solve()` timed (build + flow); then, untimed, CP-SAT to optimality on the same cost table."""
    walls: list[float] = []
    cpu: list[float] = []
    results = []
    statuses: Counter[str] = Counter()
    gc.collect()
    for orders, chans in cases:
        start, start_cpu = time.perf_counter(), time.process_time()
        result = solve(orders, chans, weights, fallback_penalty=penalty)
        walls.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        statuses[result.status] += 1
        results.append(result)
    print(f"CP-SAT references for {family.name}", file=sys.stderr)
    gaps, cpsat_ms, vs_greedy = [], [], []
    for (orders, chans), result in zip(cases, results, strict=True):
        table = build_cost_table(orders, chans, weights, penalty)
        start = time.perf_counter()
        name, choice = cpsat_choice(table, CPSAT_LIMIT_S)
        cpsat_ms.append((time.perf_counter() - start) * 1000)
        best = objective(table, choice) if choice is not None and name == "OPTIMAL" else None
        gaps.append((result.objective - best) / best * 100 if best else float("nan"))
        base = greedy(orders, chans, weights, fallback_penalty=penalty).objective
        vs_greedy.append((base - result.objective) / base * 100 if base else 0.0)
    return {
        "family": family.name,
        "samples": len(cases),
        "target_p99_ms": family.target_ms,
        "statuses": dict(statuses),
        "wall_ms": percentiles(walls),
        "cpu_ms": percentiles(cpu),
        "equal_to_cpsat_optimum": sum(1 for g in gaps if g == 0) / len(cases),
        "max_gap_percent": max((g for g in gaps if not math.isnan(g)), default=float("nan")),
        "cpsat_wall_ms": percentiles(cpsat_ms),
        "gain_vs_greedy_percent": percentiles(vs_greedy),
    }
