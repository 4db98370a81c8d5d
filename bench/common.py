"""What every benchmark prints and saves: the machine, the command, the numbers."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPORTS = Path(__file__).resolve().parent / "reports"


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def nearest_rank(p: float) -> float | None:
        if not ordered:
            return None
        return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]

    return {
        "p50": nearest_rank(50),
        "p90": nearest_rank(90),
        "p99": nearest_rank(99),
        "p99.9": nearest_rank(99.9),
        "max": ordered[-1] if ordered else None,
    }


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
