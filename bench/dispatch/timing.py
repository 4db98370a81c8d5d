"""Wall clock and CPU time of `dispatch()` (build + solve) with trips, its gap to an exact solve, and the
load average while it was timed (the machine may be shared: CPU time is the steadier number)."""

from __future__ import annotations

import gc
import os
import random
import sys
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from uoom.assignment import Weights
from uoom.assignment.dispatch import OpenTrip, dispatch
from uoom.assignment.trips import Bundling, TripOrder
from uoom.domain.channels import Channel
from uoom.replay.day import SimOrder

EXACT_MS = 20_000.0
OPEN_BEFORE = 60


Instance = tuple[list[TripOrder], list[Channel], list[OpenTrip]]


def cases(
    day_orders: list[SimOrder], channels: list[Channel], bundling: Bundling, n: int, samples: int, seed: int
) -> list[Instance]:
    """Windows of n consecutive orders (times relative to the first), 'tight' loads (1..2n/m free
    slots), and as open trips the 60 orders before the window not picked up yet, each alone on a
    bundling channel (in turn) since its creation."""
    rng = random.Random(seed)
    bundlers = [c for c in channels if c.id in bundling.channels]
    out = []
    for _ in range(samples):
        start = rng.randrange(OPEN_BEFORE, len(day_orders) - n)
        window = day_orders[start : start + n]
        now = window[0].created
        orders = [
            TripOrder(o.order_id, str(o.restaurant), o.pickup, o.dropoff, o.ready - now, now - o.created)
            for o in window
        ]
        loads = [replace(c, load=max(c.capacity - rng.randint(1, max(2, 2 * n // len(channels))), 0)) for c in channels]
        trips = []
        for k, o in enumerate(day_orders[start - OPEN_BEFORE : start]):
            c = bundlers[k % len(bundlers)]
            courier = o.created + c.pickup_latency_min * 60 - now
            if max(courier, o.ready - now) > 0:
                order = TripOrder(o.order_id, str(o.restaurant), o.pickup, o.dropoff, o.ready - now, now - o.created)
                trips.append(OpenTrip(f"open-{o.order_id}", c.id, order, courier))
        out.append((orders, loads, trips))
    return out


def time_trips(
    name: str,
    instances: list[Instance],
    weights: Weights,
    penalty: float,
    bundling: Bundling,
    deadline_ms: float,
    target_ms: float,
) -> dict[str, Any]:
    """`dispatch()` timed on every instance first; then, untimed, the exact reference of each
    (CP-SAT searching until proven optimal, from the same start)."""
    walls: list[float] = []
    cpu: list[float] = []
    plans = []
    kinds: Counter[str] = Counter()
    gc.collect()
    # The day and the instances stay out of the timed loop's collections (a gen-2 pass over them takes
    # 60-75 ms), as the daemons keep their start-up heap out (daemons/kit/runtime.py freeze_startup_heap).
    gc.freeze()
    load_before = list(os.getloadavg())
    for orders, chans, trips in instances:
        start, start_cpu = time.perf_counter(), time.process_time()
        plan = dispatch(
            orders,
            chans,
            weights,
            bundling=bundling,
            open_trips=trips,
            deadline_ms=deadline_ms,
            fallback_penalty=penalty,
        )
        walls.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        kinds[f"{plan.formulation} {plan.status}"] += 1
        plans.append(plan)
    load_after = list(os.getloadavg())
    gc.unfreeze()
    print(f"exact references for {name}", file=sys.stderr)
    gaps: list[float] = []
    unproven = 0
    for (orders, chans, trips), plan in zip(instances, plans, strict=True):
        best = dispatch(
            orders,
            chans,
            weights,
            bundling=bundling,
            open_trips=trips,
            deadline_ms=EXACT_MS,
            fallback_penalty=penalty,
            gap_target=0.0,
        )
        unproven += best.status != "OPTIMAL"
        gaps.append((plan.objective - best.objective) / best.objective * 100 if best.objective else 0.0)
    walls.sort()
    cpu.sort()
    reported = sorted(p.gap * 100 for p in plans)
    return {
        "family": name,
        "samples": len(instances),
        "deadline_ms": deadline_ms,
        "target_p99_ms": target_ms,
        "outcomes": dict(kinds),
        "p50_ms": walls[len(walls) // 2],
        "p99_ms": _at(walls, 99),
        "max_ms": walls[-1],
        "cpu_p50_ms": cpu[len(cpu) // 2],
        "cpu_p99_ms": _at(cpu, 99),
        "deadline_misses": sum(1 for w in walls if w > deadline_ms),
        "gap_to_exact_max_percent": max(gaps),
        "gap_to_exact_mean_percent": sum(gaps) / len(gaps),
        "gap_to_exact_p90_percent": _at(sorted(gaps), 90),
        "gap_to_exact_p99_percent": _at(sorted(gaps), 99),
        "within_half_percent": sum(1 for g in gaps if g <= 0.5) / len(gaps),
        "reported_gap_max_percent": reported[-1],
        "reported_gap_p50_percent": reported[len(reported) // 2],
        "reported_gap_p90_percent": _at(reported, 90),
        "loadavg_timed": [load_before, load_after],
        "references_not_proven": unproven,
        "joins_p50": sorted(sum(1 for x in p.placements if x.trip_id) for p in plans)[len(plans) // 2],
        "trip_orders_p50": sorted(sum(1 for x in p.placements if x.partner_id) for p in plans)[len(plans) // 2],
    }


def _at(ordered: list[float], percent: int) -> float:
    """The nearest-rank percentile of a sorted list."""
    return ordered[max(0, -(-percent * len(ordered) // 100) - 1)]
