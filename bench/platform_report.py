"""The platform benchmark's arithmetic and tables (pure: no service, no clock): CPU per order, the
API's assignment sources and the relay's commit -> ack histogram over one run, the summary against
issue 13's targets, and a py-spy profile as a table."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

# The per-process table's columns, in this order; a process not named here comes after them.
PROCESSES = ("api", "optimizer", "relay", "dynamodb", "kafka", "postgres", "redis", "bench client")
COMMIT_TO_ACK = "outbox_publish_latency_seconds"
COMMIT_TO_ACK_TARGET_S = 0.05


def cpu_ms_per_order(cpu_seconds: dict[str, float], orders: int) -> dict[str, float | None]:
    """Milliseconds of CPU per order created, per process tree and in total."""
    if orders <= 0:
        return {name: None for name in [*cpu_seconds, "total"]}
    per: dict[str, float | None] = {name: round(seconds * 1000 / orders, 3) for name, seconds in cpu_seconds.items()}
    return per | {"total": round(sum(cpu_seconds.values()) * 1000 / orders, 3)}


def assignment(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The channel choices made between two readings of the API's metrics JSON, by source, and
    the optimizer's share of them."""

    def sources(document: dict[str, Any]) -> Counter[str]:
        return Counter(((document.get("api") or {}).get("assignment") or {}).get("sources") or {})

    delta = sources(after)
    delta.subtract(sources(before))
    made = {name: count for name, count in sorted(delta.items()) if count}
    total = sum(made.values())
    return {"sources": made, "optimizer_share": round(made.get("optimizer", 0) / total, 4) if total else None}


def final_assignment(sources: dict[str, int]) -> dict[str, Any]:
    """Under dispatch_policy in-time: what assigned the run's orders in the end (`in-time`: the
    optimizer's round), and the optimizer's share (at creation or in a round)."""
    total = sum(sources.values())
    by_optimizer = sources.get("optimizer", 0) + sources.get("in-time", 0)
    return {"sources": dict(sorted(sources.items())),
            "optimizer_share": round(by_optimizer / total, 4) if total else None}  # fmt: skip


def buckets(prometheus_text: str, name: str = COMMIT_TO_ACK) -> dict[float, float]:
    """A histogram's cumulative bucket counts (upper bound in seconds -> count) from the
    Prometheus text format."""
    found: dict[float, float] = {}
    for family in text_string_to_metric_families(prometheus_text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                found[float(sample.labels["le"])] = sample.value
    return found


def commit_to_ack(
    before: dict[float, float], after: dict[float, float], window: dict[str, Any] | None
) -> dict[str, Any]:
    """Commit -> Kafka ack over one run. From the histogram's buckets (read before and after the
    run, so nothing earlier counts): the events, the share acked within 50 ms (exact: 50 ms is a
    bucket bound) and the bucket that holds the P99. From the relay's 60 s window read at the end
    of the run: the exact P99, when the window holds no event older than the run."""
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in sorted(after)}
    events = int(delta.get(math.inf, 0))
    within = delta.get(COMMIT_TO_ACK_TARGET_S)
    bound = next((le for le, count in delta.items() if events and count >= 0.99 * events), None)
    window = window or {}
    only_run = window.get("count") is not None and window["count"] <= events
    return {
        "events": events,
        "share_within_50ms": round(within / events, 4) if events and within is not None else None,
        "p99_bucket_ms": None if bound is None else (math.inf if bound == math.inf else round(bound * 1000, 1)),
        "window_p99_ms": window.get("p99") if only_run else None,
        "window": window,
    }


@dataclass(frozen=True)
class Target:
    what: str
    target: str
    measure: Callable[[dict[str, Any]], tuple[str, bool] | None]  # a run's results -> (cell, met)


def _p99(run: dict[str, Any]) -> float | None:
    value = run["latency_ms"]["p99"]
    return None if value is None else float(value)


def _errors(run: dict[str, Any]) -> int:
    return sum(run["errors"].values())


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _cpu(phase: str) -> Callable[[dict[str, Any]], tuple[str, bool] | None]:
    def measure(results: dict[str, Any]) -> tuple[str, bool] | None:
        if phase not in results:
            return None
        total = results[phase]["cpu_ms_per_order"]["total"]
        return _ms(total), total is not None and total <= 10

    return measure


def _create_p99(phase: str, limit: float) -> Callable[[dict[str, Any]], tuple[str, bool] | None]:
    def measure(results: dict[str, Any]) -> tuple[str, bool] | None:
        if phase not in results:
            return None
        run = results[phase]["create"]
        p99, errors = _p99(run), _errors(run)
        cell = _ms(p99) + (f", {errors} errors" if errors else "")
        return cell, p99 is not None and p99 <= limit and not errors

    return measure


def _optimizer_share(results: dict[str, Any]) -> tuple[str, bool] | None:
    if "a" not in results:
        return None
    share = results["a"]["assignment"]["optimizer_share"]
    return ("-", False) if share is None else (f"{share * 100:.1f} %", share >= 0.99)


def _commit_to_ack(results: dict[str, Any]) -> tuple[str, bool] | None:
    if "a" not in results:
        return None
    c = results["a"]["commit_to_ack"]
    share = c["share_within_50ms"]
    if share is None:
        return "-", False
    p99 = c["window_p99_ms"]
    shown = _ms(p99) if p99 is not None else f"<= {c['p99_bucket_ms']} ms (bucket)"
    return f"{shown} ({share * 100:.1f} % <= 50 ms)", share >= 0.99


def _ratio(pair: int) -> Callable[[dict[str, Any]], tuple[str, bool] | None]:
    def measure(results: dict[str, Any]) -> tuple[str, bool] | None:
        if "c" not in results:
            return None
        p = results["c"]["pairs"][pair]
        ratio, errors = p["ratio"], _errors(p["floor"]) + _errors(p["status"])
        if ratio is None:
            return "-", False
        cell = f"{ratio:.2f}x ({p['status_p99_ms']:.1f} / {p['floor_p99_ms']:.1f} ms)" + (
            f", {errors} errors" if errors else ""
        )
        return cell, ratio <= 2 and not errors

    return measure


def _peak_errors(results: dict[str, Any]) -> tuple[str, bool] | None:
    if "d" not in results:
        return None
    run = results["d"]["create"]
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(run["errors"].items()))
    return (f"{_errors(run)} ({kinds})" if kinds else "0"), not _errors(run)


TARGETS = (
    Target("CPU per order, all processes together, 100/s with the optimizer (a)", "<= 10 ms", _cpu("a")),
    Target("CPU per order, all processes together, 167/s (d)", "<= 10 ms", _cpu("d")),
    Target("create P99 at 100 orders/s, API alone (b)", "<= 100 ms", _create_p99("b", 100)),
    Target("create P99 at 100 orders/s, optimizer running (a)", "<= 100 ms, 0 errors", _create_p99("a", 100)),
    Target("orders assigned by the optimizer at 100/s (a)", ">= 99 %", _optimizer_share),
    Target("commit -> Kafka ack P99 during that run (a)", "<= 50 ms", _commit_to_ack),
    Target("status P99 / floor P99 at 500/s, API alone (c)", "<= 2x", _ratio(0)),
    Target("status P99 / floor P99 at 500/s, creates at 50/s beside it (c)", "<= 2x", _ratio(1)),
    Target("the seed's peak, 167 orders/s: errors (d)", "0", _peak_errors),
    Target("the seed's peak, 167 orders/s: create P99 (d)", "goal <= 250 ms", _create_p99("d", 250)),
)


def verdicts(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target's cell per run and whether every run that measured it met it (None: no run did)."""
    rows = []
    for t in TARGETS:
        measured = [t.measure(results) for results in runs]
        seen = [m for m in measured if m is not None]
        met = all(ok for _, ok in seen) if seen else None
        rows.append({"what": t.what, "runs": [m[0] if m else "-" for m in measured], "target": t.target, "met": met})
    return rows


def summary_table(runs: list[dict[str, Any]]) -> str:
    rows = verdicts(runs)
    names = [f"run {i}" for i in range(1, len(runs) + 1)]
    lines = ["| what | " + " | ".join(names) + " | target | met |", "|---" * (len(names) + 3) + "|"]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        lines.append(f"| {row['what']} | " + " | ".join(row["runs"]) + f" | {row['target']} | {met} |")
    return "\n".join(lines)


def cpu_table(runs: list[dict[str, Any]], phase: str) -> str:
    """Milliseconds of CPU per order created, per process tree, one row per run of the phase."""
    measured = [(i, r[phase]) for i, r in enumerate(runs, 1) if phase in r]
    if not measured:
        return ""
    seen = {name for _, p in measured for name in p["cpu_ms_per_order"] if name != "total"}
    names = [n for n in PROCESSES if n in seen] + sorted(seen - set(PROCESSES))
    lines = ["| run | orders | " + " | ".join(names) + " | total |", "|---" * (len(names) + 3) + "|"]
    for i, p in measured:
        per = p["cpu_ms_per_order"]
        cells = ["-" if per.get(n) is None else f"{per[n]:.2f}" for n in [*names, "total"]]
        lines.append(f"| run {i} | {p['create']['ok']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def latency_table(runs: list[dict[str, Any]]) -> str:
    """Every open loop of every run: the rate, what was sent and answered, errors by kind, latency."""
    lines = ["| run | phase | load | rate/s | sent | ok | errors | p50 | p90 | p99 | p99.9 | max |", "|---" * 12 + "|"]
    for i, results in enumerate(runs, 1):
        for phase, loop in loops(results):
            p = loop["latency_ms"]
            errors = ", ".join(f"{k}: {v}" for k, v in sorted(loop["errors"].items())) or "0"
            cells = ["-" if p[k] is None else f"{p[k]:.1f}" for k in ("p50", "p90", "p99", "p99.9", "max")]
            lines.append(f"| {i} | {phase} | {loop['name']} | {loop['rate']:g} | {loop['sent']} | {loop['ok']} | "
                         f"{errors} | " + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines)


def loops(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for phase in ("a", "b", "d"):
        if phase in results:
            out.append((phase, results[phase]["create"]))
    if "c" in results:
        for pair in results["c"]["pairs"]:
            for key in ("floor", "status"):
                out.append((f"c {pair['label']}", pair[key]))
            out += [(f"c {pair['label']}", run) for run in pair.get("beside", [])]
    return out


def profile_table(collapsed: str, top: int = 25) -> tuple[int, list[dict[str, Any]]]:
    """py-spy's raw (collapsed stacks) output -> the samples, and the `top` functions by own time
    (samples where the function was the innermost frame) with their total (inclusive) time."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    rows = [
        {"function": frame, "own": n, "own_pct": round(100 * n / samples, 1),
         "total_pct": round(100 * inclusive[frame] / samples, 1)}
        for frame, n in own.most_common(top)
    ]  # fmt: skip
    return samples, rows


def profile_markdown(process: str, samples: int, rows: list[dict[str, Any]], seconds: float, rate: int) -> str:
    lines = [
        f"py-spy sampled `{process}` (with its child processes) {rate} times a second for {seconds:g} s "
        f"during one more run of phase a, 100 orders/s (idle threads left out): {samples} samples "
        f"with the process on CPU, about {samples / (rate * seconds):.2f} cores.",
        "",
        "| # | function (file:first line) | own samples | own % | total % |",
        "|---|---|---|---|---|",
    ]
    for i, row in enumerate(rows, 1):
        function = row["function"].replace("|", "\\|")
        lines.append(f"| {i} | `{function}` | {row['own']} | {row['own_pct']} | {row['total_pct']} |")
    return "\n".join(lines)
