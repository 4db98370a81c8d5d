"""The dispatch benchmark's report: one part re-run (`--only day|timing`) replaces that part's numbers
and keeps the other's, each with its own run line (when, load average); the product's policy is a row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.dispatch.report import render
from bench.optimizer_bench import LABELS, previous
from uoom.replay.day import load

RUN = {"when": "2026-11-30T17:00:00+00:00", "command": "python bench/optimizer_bench.py --only day",
       "loadavg": [1.5, 1.25, 1.0], "loadavg_end": [1.75, 1.5, 1.0], "run_s": 200.0}  # fmt: skip


def summary(dollars: float) -> dict[str, Any]:
    return {"dollars_per_delivered_with_penalties": dollars, "dollars_per_delivered": dollars,
            "on_time_rate_all": 0.975, "fallbacks": 0, "trips_formed": 10, "joins": 10, "moves": 0,
            "fees_paid": 0.0, "objective_points_per_order": 13.0, "books_fault_count": 0,
            "solve_ms": {"p50": 0.2, "p99": 9.0, "max": 20.0}}  # fmt: skip


def day_report() -> dict[str, Any]:
    product = f"{LABELS['at-once']}, default weights"
    report = {
        "machine": {"cpu_count": 2, "cpu_model": "AMD EPYC", "python": "3.11.7", "ortools": "9.15",
                    "platform": "Linux", "loadavg": [1.5, 1.25, 1.0]},
        "day": "uoom/replay/synthetic-day.json", "seed": 20261125, "orders": 6000, "quick": False,
        "replay": {"static": summary(7.0), "greedy": summary(6.0), product: summary(6.3)},
        "relative": {"greedy": {"vs_static": -1 / 7, "vs_greedy": 0.0},
                     product: {"vs_static": 0.3 / 7 - 0.1, "vs_greedy": 0.05}},
        "runs": {"day": RUN},
    }  # fmt: skip
    return report


def test_a_day_part_alone_renders_its_rows_and_its_run_line() -> None:
    text = render(day_report())
    assert "| at once (dispatch() per order, trips + joins): the product, default weights | 6.300 |" in text
    assert "- the day's replays: 2026-11-30T17:00:00+00:00, 200 s, load average (1/5/15 min) at start " in text
    assert "1.50 / 1.25 / 1.00, at end 1.75 / 1.50 / 1.00" in text
    assert "wall clock (build + solve)" not in text and "the solve timings" not in text


def test_only_one_part_keeps_the_other_parts_numbers_and_its_run(tmp_path: Path) -> None:
    old = {**day_report(), "trips_timing": [], "timings": [], "when": "2026-11-30T11:14:40+00:00",
           "command": "python bench/optimizer_bench.py", "run_s": 389.0, "loadavg_end": [14.6, 12.9, 10.4]}  # fmt: skip
    del old["runs"]  # a report written before the parts kept their own runs
    (tmp_path / "optimizer.json").write_text(json.dumps(old))
    report = previous(tmp_path / "optimizer", "day", load(), quick=False)
    assert report["trips_timing"] == [] and report["timings"] == []
    assert report["runs"]["timing"] == {"when": "2026-11-30T11:14:40+00:00", "command": old["command"],
                                        "run_s": 389.0, "loadavg_end": [14.6, 12.9, 10.4],
                                        "loadavg": [1.5, 1.25, 1.0]}  # fmt: skip
    assert previous(tmp_path / "optimizer", None, load(), quick=False) == {}  # both parts: a fresh report
    with pytest.raises(SystemExit, match="another day or --quick setting"):
        previous(tmp_path / "optimizer", "timing", load(), quick=True)
