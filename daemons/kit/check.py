"""`--check` for every daemon (`uoom serve|optimizer|relay --check`): read the running daemon's
metrics JSON (docs/metrics.md) and answer healthy or not, with one line saying why.

Healthy means it answers and its `status` is "ok"; "starting", "degraded", "stopping", no answer,
or an answer that is not the metrics document are unhealthy (exit 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

TIMEOUT_SECONDS = 3.0


async def fetch(name: str, url: str, headers: dict[str, str] | None = None) -> tuple[dict[str, Any] | None, str]:
    """(the metrics document, "") from the daemon at `url`, or (None, one line saying why not)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as session,
            session.get(url, headers=headers) as response,
        ):
            if response.status in (401, 403):
                return None, f"{name} at {url} wants an API key for its metrics (UOOM_API_METRICS_REQUIRE_KEY)"
            document = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return None, f"{name} not answering at {url} ({type(exc).__name__})"
    if not isinstance(document, dict) or "status" not in document:
        return None, f"{name}: {url} did not answer the metrics document"
    return document, ""


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
