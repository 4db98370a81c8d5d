"""The platform benchmark's pure parts: CPU per order, the deltas over a run, the verdict against
issue 13's targets, the profile table and the options."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench import platform_report as pr
from bench.platform_bench import parse


def loop(p99: float | None, errors: dict[str, int] | None = None, ok: int = 6000) -> dict[str, Any]:
    return {"name": "create POST /api/orders", "rate": 100, "sent": ok, "ok": ok, "errors": errors or {},
            "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": p99, "p99.9": 4.0, "max": 5.0}}  # fmt: skip


def platform_phase(p99: float, total_ms: float, share: float, within: float, errors: dict[str, int] | None = None):
    return {
        "create": loop(p99, errors),
        "cpu_ms_per_order": {"api": total_ms / 2, "postgres": total_ms / 2, "total": total_ms},
        "assignment": {"sources": {}, "optimizer_share": share},
        "commit_to_ack": {"share_within_50ms": within, "window_p99_ms": 12.0, "p99_bucket_ms": 25.0},
    }


def pair(floor: float, status: float) -> dict[str, Any]:
    return {"label": "alone", "floor": loop(floor), "status": loop(status), "beside": [],
            "floor_p99_ms": floor, "status_p99_ms": status, "ratio": status / floor}  # fmt: skip


def all_met() -> dict[str, Any]:
    return {
        "a": platform_phase(80, 9.5, 0.995, 0.999),
        "b": {"create": loop(60)},
        "c": {"pairs": [pair(2.0, 3.0), pair(2.0, 3.9)]},
        "d": platform_phase(240, 9.9, 0.99, 0.99),
    }


def test_cpu_per_order_is_milliseconds_of_cpu_per_order_created() -> None:
    per = pr.cpu_ms_per_order({"api": 30.0, "postgres": 15.0}, 6000)
    assert per == {"api": 5.0, "postgres": 2.5, "total": 7.5}
    assert pr.cpu_ms_per_order({"api": 1.0}, 0) == {"api": None, "total": None}


def test_assignment_counts_only_the_choices_made_during_the_run() -> None:
    before = {"api": {"assignment": {"sources": {"optimizer": 20, "greedy": 5}}}}
    after = {"api": {"assignment": {"sources": {"optimizer": 1010, "greedy": 5, "ranking": 10}}}}
    assert pr.assignment(before, after) == {"sources": {"optimizer": 990, "ranking": 10}, "optimizer_share": 0.99}
    assert pr.assignment({}, {})["optimizer_share"] is None


PROM = """# HELP outbox_publish_latency_seconds x
# TYPE outbox_publish_latency_seconds histogram
outbox_publish_latency_seconds_bucket{{le="0.025"}} {a}
outbox_publish_latency_seconds_bucket{{le="0.05"}} {b}
outbox_publish_latency_seconds_bucket{{le="0.1"}} {c}
outbox_publish_latency_seconds_bucket{{le="+Inf"}} {c}
outbox_publish_latency_seconds_count {c}
outbox_publish_latency_seconds_sum 1.0
"""


def test_commit_to_ack_leaves_out_the_events_before_the_run() -> None:
    before = pr.buckets(PROM.format(a=10, b=20, c=20))  # warm-up: 10 of 20 slower than 25 ms
    after = pr.buckets(PROM.format(a=900, b=1010, c=1020))
    c = pr.commit_to_ack(before, after, {"count": 1000, "p99": 31.5})
    assert c["events"] == 1000
    assert c["share_within_50ms"] == 0.99
    assert c["p99_bucket_ms"] == 50.0
    assert c["window_p99_ms"] == 31.5
    # a window holding more events than the run held some from before it: its P99 is not the run's
    assert pr.commit_to_ack(before, after, {"count": 1010, "p99": 31.5})["window_p99_ms"] is None
    assert pr.commit_to_ack(before, before, None)["share_within_50ms"] is None
    assert pr.commit_to_ack({}, {math.inf: 5.0, 0.05: 0.0}, None)["p99_bucket_ms"] == math.inf


def test_a_target_is_met_only_when_every_run_meets_it() -> None:
    runs = [all_met(), all_met(), all_met()]
    assert all(row["met"] for row in pr.verdicts(runs))
    runs[1]["a"]["create"]["errors"] = {"http 503": 3}
    runs[2]["c"]["pairs"][1] = pair(2.0, 4.2)
    met = {row["what"]: row["met"] for row in pr.verdicts(runs)}
    assert met["create P99 at 100 orders/s, optimizer running (a)"] is False
    assert met["status P99 / floor P99 at 500/s, creates at 50/s beside it (c)"] is False
    assert met["status P99 / floor P99 at 500/s, API alone (c)"] is True


def test_a_phase_not_run_is_neither_met_nor_missed() -> None:
    only_b = [{"b": {"create": loop(150)}}]
    rows = {row["what"]: row for row in pr.verdicts(only_b)}
    assert rows["create P99 at 100 orders/s, API alone (b)"]["met"] is False
    assert rows["create P99 at 100 orders/s, API alone (b)"]["runs"] == ["150 ms"]
    assert rows["orders assigned by the optimizer at 100/s (a)"] == {
        "what": "orders assigned by the optimizer at 100/s (a)", "runs": ["-"], "target": ">= 99 %", "met": None
    }  # fmt: skip


def test_a_run_with_no_success_misses_its_targets() -> None:
    results = all_met()
    results["d"]["create"] = loop(None, {"ClientConnectorError": 10020}, ok=0)
    met = {row["what"]: row for row in pr.verdicts([results])}
    assert met["the seed's peak, 167 orders/s: create P99 (d)"]["met"] is False
    assert met["the seed's peak, 167 orders/s: errors (d)"]["runs"] == ["10020 (ClientConnectorError: 10020)"]


def test_summary_table_has_a_column_per_run() -> None:
    table = pr.summary_table([all_met(), all_met()])
    header, rule, *rows = table.splitlines()
    assert header == "| what | run 1 | run 2 | target | met |"
    assert rule == "|---|---|---|---|---|"
    assert len(rows) == len(pr.TARGETS)
    assert (
        rows[0]
        == "| CPU per order, all processes together, 100/s with the optimizer (a) | 9.5 ms | 9.5 ms | <= 10 ms | yes |"
    )


def test_cpu_table_orders_the_processes_as_the_issue_does() -> None:
    results = all_met()
    results["a"]["cpu_ms_per_order"] = {"bench client": 1.0, "zz": 0.5, "api": 2.0, "total": 3.5}
    lines = pr.cpu_table([results], "a").splitlines()
    assert lines[0] == "| run | orders | api | bench client | zz | total |"
    assert lines[2] == "| run 1 | 6000 | 2.00 | 1.00 | 0.50 | 3.50 |"
    assert pr.cpu_table([{"b": {}}], "a") == ""


def test_profile_table_counts_own_and_inclusive_samples() -> None:
    collapsed = (
        "main (a.py:1);handle (b.py:5);execute (asyncpg.py:9) 6\nmain (a.py:1);handle (b.py:5) 3\nmain (a.py:1) 1\n"
    )
    samples, rows = pr.profile_table(collapsed, top=2)
    assert samples == 10
    assert rows == [
        {"function": "execute (asyncpg.py:9)", "own": 6, "own_pct": 60.0, "total_pct": 60.0},
        {"function": "handle (b.py:5)", "own": 3, "own_pct": 30.0, "total_pct": 90.0},
    ]


def test_options_default_to_three_runs_of_every_phase_and_quick_to_one_short_run() -> None:
    args = parse([])
    assert (args.runs, args.seconds, args.only) == (3, 60, ["a", "b", "c", "d"])
    quick = parse(["--quick", "--only", "d,a"])
    assert (quick.runs, quick.seconds, quick.only) == (1, 5, ["a", "d"])


@pytest.mark.parametrize("argv", [["--only", "a,x"], ["--only", ","], ["--runs", "0"], ["--profile", "dynamodb"]])
def test_bad_options_are_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 2
