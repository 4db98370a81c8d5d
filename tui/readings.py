"""What the sources answered, made into the Snapshot's parts: pure functions, no I/O, so each rule
(route groups, how a store's health is judged from several views, the status mix) is tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tui.model import DEGRADED, DOWN, ROUTE_GROUPS, UNKNOWN, UP, Percentiles, SourceHealth

# The monitoring routes: the dashboard's own polls, Prometheus scrapes and probes are not traffic.
MONITORING = frozenset({"/api/metrics", "/metrics", "/healthz", "/readyz"})
GROUP_OF = {
    "POST /api/orders": "create",
    "GET /api/orders/{order_id}/status": "status",
    "POST /api/orders/status:batch": "batch",
}
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True)
class Seen:
    """One reading of a service by the dashboard itself: up, down (with why), or not yet asked."""

    up: bool | None
    detail: str = ""
    error: str | None = None


NOT_ASKED = Seen(None, "not asked yet")


def route_group(key: str) -> str | None:
    """The group of an API `latency` (or `responses`) key such as `GET /api/orders/{order_id}`:
    None for what is not a route (stages, the event loop, GC pauses) and for the monitoring routes."""
    method, space, path = key.partition(" ")
    if not space or not method.isalpha() or not method.isupper():
        return None
    if path in MONITORING:
        return None
    return GROUP_OF.get(key, "other")


def percentiles(entry: Mapping[str, Any]) -> Percentiles:
    return Percentiles(
        count=int(entry.get("count") or 0),
        rate_per_second=float(entry.get("ratePerSecond") or 0.0),
        p50=entry.get("p50"),
        p95=entry.get("p95"),
        p99=entry.get("p99"),
        max=entry.get("max"),
    )


IDLE_LATENCY = Percentiles(count=0, rate_per_second=0.0, p50=None, p95=None, p99=None, max=None)


def group_latency(latency: Mapping[str, Mapping[str, Any]]) -> dict[str, Percentiles]:
    """Each route group's percentiles over the API's last 60 s. A group of several routes
    ("other") shows its worst route's percentiles (highest P99) with the count and rate of all."""
    members: dict[str, list[Percentiles]] = {group: [] for group in ROUTE_GROUPS}
    for key, entry in latency.items():
        group = route_group(key)
        if group is not None:
            members[group].append(percentiles(entry))
    found = {}
    for group, entries in members.items():
        if not entries:
            found[group] = IDLE_LATENCY
            continue
        worst = max(entries, key=lambda e: (e.p99 is not None, e.p99 or 0.0))
        found[group] = Percentiles(
            count=sum(e.count for e in entries),
            rate_per_second=round(sum(e.rate_per_second for e in entries), 3),
            p50=worst.p50, p95=worst.p95, p99=worst.p99, max=worst.max,
        )  # fmt: skip
    return found


def response_totals(responses: Mapping[str, Mapping[str, int]]) -> dict[str, tuple[int, int]]:
    """(all responses, 5xx responses) per route group since the API started, from `api.responses`."""
    totals = {group: (0, 0) for group in ROUTE_GROUPS}
    for key, by_class in responses.items():
        group = route_group(key)
        if group is None:
            continue
        every, errors = totals[group]
        totals[group] = (every + sum(by_class.values()), errors + by_class.get("5xx", 0))
    return totals


def daemon_health(name: str, document: Mapping[str, Any] | None, why: str) -> SourceHealth:
    """A daemon's row: down when it does not answer, degraded when its status is not ok."""
    if document is None:
        return SourceHealth(name, DOWN, why, why)
    status, problems = document.get("status"), list(document.get("problems") or [])
    about = f"{document.get('version', '?')}, up {uptime(float(document.get('uptimeSeconds') or 0))}"
    if status == "ok":
        return SourceHealth(name, UP, f"ok, {about}")
    first = problems[0] if problems else about
    return SourceHealth(name, DEGRADED, f"{status}: {first}", "; ".join(problems) or None)


def store_health(name: str, own: Seen, documents: Mapping[str, Mapping[str, Any] | None]) -> SourceHealth:
    """A store's row from the dashboard's own reading and every answering daemon's view of it:
    up when all that know say up, down when all say down, degraded when they disagree (the
    dashboard reaches it but a daemon does not, or the other way round)."""
    views = {"dashboard": own} if own.up is not None else {}
    for daemon, document in documents.items():
        dependency = ((document or {}).get("dependencies") or {}).get(name)
        if dependency and dependency.get("up") is not None:
            views[daemon] = Seen(bool(dependency["up"]), error=dependency.get("error"))
    if not views:
        return SourceHealth(name, UNKNOWN, own.detail or "not known yet")
    down = {who: seen for who, seen in views.items() if not seen.up}
    troubled = {who: seen for who, seen in views.items() if not seen.up or seen.error}  # or answering wrongly
    if not troubled:
        return SourceHealth(name, UP, own.detail or f"up for {', '.join(views)}")
    error = "; ".join(f"{who}: {seen.error or 'down'}" for who, seen in troubled.items())
    if len(down) == len(views):
        return SourceHealth(name, DOWN, own.error or error, error)
    if down:
        return SourceHealth(name, DEGRADED, f"down for {', '.join(down)}", error)
    return SourceHealth(name, DEGRADED, own.detail if own.error else error, error)


def status_mix(solves: Mapping[str, float], fallbacks: float) -> dict[str, float]:
    """Share of solves by solver status, and FALLBACK (orders left to the fallback), summing to 1;
    empty when there was nothing."""
    whole = sum(solves.values()) + fallbacks
    if whole <= 0:
        return {}
    mix = {status: round(count / whole, 4) for status, count in sorted(solves.items()) if count}
    if fallbacks:
        mix["FALLBACK"] = round(fallbacks / whole, 4)
    return mix


def uptime(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"
    return f"{seconds // 86400:.0f} d {seconds % 86400 // 3600:.0f} h"


def section(document: Mapping[str, Any] | None, *path: str) -> Any:
    """The value at `path` of a daemon's document, None when the daemon or the key is missing."""
    value: Any = document
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
