"""What a benchmark report says about where it ran: the machine, and the versions of what ran."""

from __future__ import annotations

import asyncio
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from uoom.config import Settings


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, Python, OS and the load average when asked."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpuinfo("model name") or platform.processor() or "unknown",
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def _cpuinfo(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


async def versions(settings: Settings | None = None) -> dict[str, str]:
    """uoom's and Python's versions; with the settings, each local stack service's own (asked
    over its protocol: `unknown` when it does not answer within 5 s)."""
    try:
        uoom = version("uoom")
    except PackageNotFoundError:
        uoom = "unknown"
    found = {"uoom": uoom, "python": platform.python_version()}
    if settings is None:
        return found
    from uoom.stack import Stack

    services = Stack(settings).select(["postgres", "redis", "kafka", "dynamodb"])

    async def probe(service: Any) -> str:
        try:
            return str(await asyncio.wait_for(service.probe(), timeout=5))
        except Exception:  # noqa: BLE001 - a service that does not answer has no version to tell
            return "unknown"

    answers = await asyncio.gather(*(probe(s) for s in services))
    return found | {s.name: answer for s, answer in zip(services, answers, strict=True)}


SECRET_OPTIONS = ("--api-key",)


def command_line(argv: list[str]) -> str:
    """The exact command, fit for a report: secret option values and URL passwords masked."""
    import shlex

    from uoom.redact import MASK, mask_secrets

    shown = []
    hide_next = False
    for word in argv:
        option, eq, _ = word.partition("=")
        if hide_next:
            shown.append(MASK)
        elif eq and option in SECRET_OPTIONS:
            shown.append(f"{option}={MASK}")
        else:
            shown.append(word)
        hide_next = word in SECRET_OPTIONS
    return mask_secrets(shlex.join(shown))
