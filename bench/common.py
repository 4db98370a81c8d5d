"""What every benchmark prints and saves: the machine, the command, the numbers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from uoom.loadgen.histogram import Histogram
from uoom.loadgen.machine import machine

__all__ = ["REPORTS", "machine", "percentiles", "save"]

REPORTS = Path(__file__).resolve().parent / "reports"


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """P50/P90/P99/P99.9/max of non-negative values, through the shared HDR histogram
    (uoom/loadgen): three significant digits, at any unit (kept to a millionth of it)."""
    return Histogram.of(values).summary(digits=9)


def save(name: str, report: dict[str, Any], markdown: str) -> Path:
    REPORTS.mkdir(parents=True, exist_ok=True)
    report = {"when": datetime.now(UTC).isoformat(), "command": " ".join(sys.argv), "machine": machine(), **report}
    (REPORTS / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    header = (
        f"# {name}\n\n- when: {report['when']}\n- command: `{report['command']}`\n"
        f"- machine: {report['machine']['cpus']} x {report['machine']['cpu_model']}, "
        f"Python {report['machine']['python']}, load average {report['machine']['load_average']}\n\n"
    )
    path = REPORTS / f"{name}.md"
    path.write_text(header + markdown + "\n")
    return path
