"""`uoom metrics SERVICE`: a running daemon's metrics document (docs/metrics.md), for people (two
tables) and scripts (`--json`, `uoom --get PATH metrics SERVICE --json`): what the runbooks read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import typer

from commands._context import current
from commands._output import JSON_OPTION, ExitCode, command, emit_json, err, fail, render
from uoom.daemon_metrics import PATHS

LATENCY = ("name", "count", "ratePerSecond", "p50", "p95", "p99", "max")


@command
async def metrics(
    service: str = typer.Argument(..., help="api, optimizer or relay.", show_default=False),
    url: str | None = typer.Option(
        None, "--url", help="The daemon's base URL, e.g. http://10.0.0.7:3001 (default: as `uoom config` shows)."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="UOOM_API_KEY", help="For an API whose metrics need a key (UOOM_API_KEY)."
    ),
    max_p99: float | None = typer.Option(
        None, "--max-p99", min=0, help="Exit 1 when a latency's P99 (ms, last 60 s) is over this; each is named."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """A running daemon's metrics: status, problems, dependencies, latency (P50/P95/P99 over the last
    60 s) per route or stage, and its own numbers (hit rate, fallback rate, outbox lag, ...).

    Read-only. `uoom --get api.readModel.hitRate metrics api --json` prints one value.
    Exit codes: 0 it answered (whatever its status: `--check` of its verb judges that), 1 it did not
    answer or a P99 is over --max-p99, 2 a usage error.
    """
    from daemons.kit.check import fetch
    from uoom.daemon_metrics import api_key_headers, metrics_url
    from uoom.errors import UsageError

    if service not in PATHS:
        raise UsageError(f"unknown service {service!r}; known: {', '.join(PATHS)}")
    base = (url or current().settings.service_urls()[service] or "").rstrip("/")  # masked: for the messages
    document, why = await fetch(service, metrics_url(current().settings, service, url), api_key_headers(api_key))
    if document is None:
        raise fail(why)
    latency = [{"name": name, **entry} for name, entry in (document.get("latency") or {}).items()]
    if as_json:
        emit_json(document)
    else:
        _show(service, base, document, latency)
    slow = [e for e in latency if max_p99 is not None and (e.get("p99") or 0) > max_p99]
    for entry in sorted(slow, key=lambda e: -e["p99"]):
        err.print(f"{entry['name']} P99 {entry['p99']:g} ms is over {max_p99:g} ms ({entry['count']} in the last 60 s)")
    if slow:
        raise typer.Exit(ExitCode.PROBLEM)


def _show(service: str, base: str, document: dict[str, Any], latency: list[dict[str, Any]]) -> None:
    rest = {k: v for k, v in document.items() if k != "latency"}
    render([{"metric": k, "value": v} for k, v in flatten(rest)], ("metric", "value"), as_json=False, title=service)
    render(latency, LATENCY, as_json=False, title="latency (ms, last 60 s)", headers={"ratePerSecond": "per s"})
    err.print(f"{service} at {base}: {document['status']}; `uoom --get PATH metrics {service} --json` reads one")


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf) pairs: the paths `uoom --get` takes. Lists stay whole (problems)."""
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, "; ".join(map(str, value)) if isinstance(value, list) else value
