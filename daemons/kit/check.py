"""`--check` for every daemon (`uoom serve|optimizer|relay --check`): read the running daemon's
metrics JSON (docs/metrics.md) and answer healthy or not, with one line saying why.

Healthy means it answers and its `status` is "ok"; "starting", "degraded", "stopping", no answer,
or an answer that is not the metrics document are unhealthy (exit 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uoom.daemon_metrics import TIMEOUT_SECONDS, read_once


async def fetch(name: str, url: str, headers: dict[str, str] | None = None) -> tuple[dict[str, Any] | None, str]:
    """(the metrics document, "") from the daemon at `url`, or (None, one line saying why not)."""
    return await read_once(name, url, headers, TIMEOUT_SECONDS)


async def check(name: str, url: str, detail: Callable[[dict[str, Any]], str] | None = None) -> tuple[bool, str]:
    """(healthy, one line for the operator)."""
    document, why = await fetch(name, url)
    if document is None:
        return False, why
    status = document["status"]
    about = (detail or dependencies)(document)
    if status == "ok":
        return True, f"{name} ok ({about})"
    return False, f"{name} {status}: {'; '.join(document.get('problems') or []) or about}"


def dependencies(document: dict[str, Any]) -> str:
    """`postgres up, redis up, ...`: the dependencies as the daemon sees them."""
    found = document.get("dependencies") or {}
    return ", ".join(f"{name} {'up' if dep.get('up') else 'down'}" for name, dep in found.items()) or "no dependency"
