"""The benchmark report as Markdown (the JSON holds the same numbers, and more)."""

from __future__ import annotations

import math
from typing import Any


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def header(*names: str) -> list[str]:
    return [row(*names), "|" + "---|" * len(names)]


def trio(stats: dict[str, float], digits: int = 2) -> str:
    return " / ".join(fmt(stats.get(k), digits) for k in ("p50", "p99", "max"))


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    quick = " (QUICK run: fewer samples, not the reference numbers)" if report["quick"] else ""
    lines = [
        f"# Dispatch benchmark: two-order trips, fees, the cut-off{quick}",
        "",
        f"- machine: {m['cpu_count']} CPUs, {m['cpu_model']}; Python {m['python']}; OR-Tools {m['ortools']}",
        f"- platform: {m['platform']}",
        f"- day: `{report['day']}` (seed {report['seed']}), {report['orders']} orders",
        *(
            f"- {PART_NAMES[part]}: {r['when']}, {r['run_s']:.0f} s, load average (1/5/15 min) at start "
            f"{fmt_load(r['loadavg'])}, at end {fmt_load(r['loadavg_end'])}; command: `{r['command']}`"
            for part, r in report["runs"].items()
        ),
        "",
    ]
    if "replay" in report:
        lines += day_section(report)
    if "trips_timing" in report:
        lines += timing_sections(report)
    lines += ["", "## How to read this", "", *(f"- {note}" for note in NOTES)]
    return "\n".join(lines) + "\n"


PART_NAMES = {"day": "the day's replays", "timing": "the solve timings"}


def fmt_load(load: list[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def day_section(report: dict[str, Any]) -> list[str]:
    lines = [
        "## The synthetic day under its rules (the same orders for every policy; books checked by the run)",
        "",
        *header(
            "policy",
            "$ per delivered order incl. fees and penalties",
            "$ per delivered order (trips + fees)",
            "on time (all orders)",
            "fallbacks",
            "two-order trips (by joining)",
            "moves",
            "fees paid $",
            "objective points per order (default weights)",
            "books",
            "decision ms P50 / P99 / max",
        ),
    ]
    for name, s in report["replay"].items():
        books = "ok" if not s["books_fault_count"] else f"{s['books_fault_count']} FAULTS"
        lines.append(
            row(
                name,
                f"{s['dollars_per_delivered_with_penalties']:.3f}",
                f"{s['dollars_per_delivered']:.3f}",
                f"{s['on_time_rate_all']:.1%}",
                s["fallbacks"],
                f"{s['trips_formed']} ({s['joins']})",
                s["moves"],
                f"{s['fees_paid']:.2f}",
                f"{s['objective_points_per_order']:.3f}",
                books,
                trio(s["solve_ms"], 3),
            )
        )
    lines += ["", "Relative change, $ per delivered order incl. fees and penalties (negative = cheaper):", ""]
    for name, r in report["relative"].items():
        lines.append(f"- {name}: {r['vs_static']:+.1%} vs static, {r['vs_greedy']:+.1%} vs greedy")
    return lines


def timing_sections(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## `dispatch()` with trips: wall clock (build + solve) and the gap to an exact solve",
        "",
        *header(
            "instances",
            "samples",
            "deadline ms",
            "outcomes",
            "orders in trips (joins) P50",
            "P50 ms",
            "P99 ms",
            "max ms",
            "CPU P50 / P99 ms",
            "target P99 ms",
            "deadline misses",
            "within 0.5 % of exact",
            "gap to exact mean / P99 / max",
            "reported (proven) gap P50 / P90 / max",
            "load avg (1 min) before / after the timed loop",
            "references not proven optimal",
        ),
    ]
    for t in report["trips_timing"]:
        lines.append(
            row(
                t["family"],
                t["samples"],
                fmt(t["deadline_ms"], 0),
                t["outcomes"],
                f"{t['trip_orders_p50']} ({t['joins_p50']})",
                f"{t['p50_ms']:.2f}",
                f"{t['p99_ms']:.2f}",
                f"{t['max_ms']:.2f}",
                f"{t.get('cpu_p50_ms', float('nan')):.2f} / {t.get('cpu_p99_ms', float('nan')):.2f}",
                fmt(t["target_p99_ms"], 0),
                t["deadline_misses"],
                f"{t['within_half_percent']:.1%}",
                f"{t['gap_to_exact_mean_percent']:.3f} % / {t.get('gap_to_exact_p99_percent', float('nan')):.3f} % / "
                f"{t['gap_to_exact_max_percent']:.3f} %",
                f"{t['reported_gap_p50_percent']:.2f} % / {t.get('reported_gap_p90_percent', float('nan')):.2f} % / "
                f"{t['reported_gap_max_percent']:.2f} %",
                " / ".join(f"{load[0]:.1f}" for load in t.get("loadavg_timed", [])) or "-",
                t["references_not_proven"],
            )
        )
    lines += [
        "",
        "## `solve()` on pure assignments (min-cost flow, build included) against CP-SAT's optimum",
        "",
        *header(
            "instances",
            "samples",
            "statuses",
            "P50 ms",
            "P95 ms",
            "P99 ms",
            "max ms",
            "CPU P50 / P99 ms",
            "target P99",
            "equal to CP-SAT's optimum",
            "CP-SAT alone P50 / P99 ms",
            "gain vs greedy P50 / max",
        ),
    ]
    for t in report["timings"]:
        w, g, c = t["wall_ms"], t["gain_vs_greedy_percent"], t["cpsat_wall_ms"]
        lines.append(
            row(
                t["family"],
                t["samples"],
                t["statuses"],
                f"{w['p50']:.2f}",
                f"{w['p95']:.2f}",
                f"{w['p99']:.2f}",
                f"{w['max']:.2f}",
                f"{t['cpu_ms']['p50']:.2f} / {t['cpu_ms']['p99']:.2f}",
                fmt(t["target_p99_ms"], 0),
                f"{t['equal_to_cpsat_optimum']:.1%}",
                f"{c['p50']:.2f} / {c['p99']:.2f}",
                f"{g['p50']:.2f} % / {g['max']:.2f} %",
            )
        )
    return lines


NOTES = [
    "The rules and every reading of them the simulation had to choose: docs/dispatch.md.",
    "Policies. static: the first channel of the day's `static_priority` with a free slot in radius. greedy: the "
    "cheapest channel in dollars with a free slot in radius. greedy + joins: the same, or joining an open trip if "
    "that adds fewer dollars. at once, the product (the optimizer's policy under the setting "
    "dispatch_policy=at-once): `dispatch()` on each order as it arrives (singles and joins of open trips, the "
    "weighted objective; an order it leaves goes to the composite ranking's best channel with room, as the API "
    "does), the code the optimizer daemon runs and `uoom channels weights tune` replays. batch 60 s: "
    "orders wait for the next whole minute, then `dispatch()` on the minute's orders with pairs "
    "and joins, solved exactly (CP-SAT to proven optimality). rolling: at once plus `reoptimize()` every 2 minutes "
    "over the single-order trips whose courier has not reached the restaurant, each move paying half the old "
    "channel's base cost, under the daemon's rules: a move is made only if it gains more than its fee + 1 point, "
    "and moves leave every channel a reserve of free slots (the orders of the last 2 minutes); the setting "
    "dispatch_policy=rolling. in time (dispatch_policy=in-time, the default): an order whose food is ready later "
    "than 8 minutes from now waits unassigned (the API gives it no channel); every 30 s the optimizer's round "
    "puts the orders now within 8 minutes of ready through `dispatch()` with pairs and joins of open trips (the "
    "round's 1 s deadline); an order ready sooner goes at once. in time, placed alone: the round places the due "
    "orders alone by one exact min-cost assignment (no fee, no reserve), as it does when no channel bundles. A "
    "slot is held from "
    "assignment, so an order assigned at creation holds its slot through the kitchen time: holding it until it "
    "is nearly ready frees those slots for others.",
    "$ per delivered order incl. fees and penalties = (trip dollars + fees + $25 per fallback) / delivered orders. "
    "On time = delivered within 45 minutes of creation, over all orders (a fallback is not on time).",
    "The books are recomputed from the trip records by uoom/replay/books.py, not taken from the simulation: "
    "capacity at every instant with a trip as one slot (assignment to last delivery + 10 min, or to its "
    "cancellation), radius of every drop-off, same restaurant / ready window / bundling channel / each order on "
    "time for every trip, joins before pickup, pickup and delivery times along the route, dollars = base + per km x "
    "route and the split summing to it, moves only before the courier reaches the restaurant with the right fee, "
    "every order placed once. 'ok' = no fault; tests/unit/test_dispatch_books.py breaks each rule once.",
    "Objective points per order = what the weighted policies minimize, re-scored after the fact with the day's "
    "default weights whatever the policy optimized: 0.5 x (trip dollars + fees) + 0.3 x minutes from creation to "
    "delivery + 0.2 x 100 x (1 - quality) per order; a fallback 25 + 0.3 x prep minutes.",
    "Decision ms = the policy's own time per decision (per order, or per batch), on a shared machine.",
    "Solve-time instances are windows of consecutive orders of the same day; 'tight' loads leave 1..2n/m free "
    "slots per channel (the 12 channels: the 8 plus 4 derived, uoom/replay/day.py twelve_channels; for trips "
    "the derived ones of bundling channels bundle too). 'loose' loads leave at least half of each channel free.",
    "dispatch() outcomes: 'priced' = trips proposed at Lagrangian slot prices and placed by min-cost flows with "
    "the pairs as rows (uoom/assignment/pricing.py), no search ('OPTIMAL' when the bound proves it); 'cpsat' = "
    "CP-SAT searched from that answer because the proven gap was above 0.5 % and the problem small enough; one "
    "order alone takes its cheapest option. The exact reference is dispatch() with gap_target 0 and a 20 s "
    "deadline (CP-SAT until proven optimal). The reported gap is against the Lagrangian bound (valid, usually "
    "tight); the true gap is the column before it.",
    "Wall clock is the target; CPU time (process_time) is printed next to it because the machine is shared: "
    "when wall clock is far above CPU time, the solver was waiting for a core, not computing.",
]
