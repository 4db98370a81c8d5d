"""`uoom dash`: the live dashboard (tui/app.py), or with `--once` one snapshot of the same data
for people (tables) and scripts (`--json`, docs/dashboard.md)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

import typer

from commands._context import current
from commands._output import JSON_OPTION, ExitCode, command, emit_json, err, render

if TYPE_CHECKING:
    from tui.model import Snapshot

LATENCY = ("group", "rps", "p50", "p95", "p99", "err", "slo", "level")
CHANNELS = ("rank", "channel", "score", "cost", "latency", "quality", "capacity", "load")
NICE = 10  # the live screen's scheduling priority: below the daemons it watches (0)


@command
async def dash(
    refresh: float | None = typer.Option(
        None, "--refresh", min=0.1, max=3600, help="Seconds between reads (default UOOM_DASH_REFRESH, 1)."
    ),
    once: bool = typer.Option(False, "--once", help="Print one snapshot (tables, or --json) and exit."),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="UOOM_API_KEY", help="For an API whose metrics need a key (UOOM_API_KEY)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The platform on one screen: API latency per route group against its SLO, the outbox, the
    live channel ranking and weights, the optimizer, and the health of every store and daemon.
    Reads the daemons' metrics endpoints, PostgreSQL and Redis at the URLs of `uoom config`, so it
    watches a remote deployment as well. Keys: q quit, p pause, ? help, / filter the channels,
    w weights, d dead letters, esc back.

    Exit codes: 0 quit, or with --once a snapshot printed where nothing is down; 1 with --once a
    source is down (its row says why); 2 a usage error (no terminal without --once).
    """
    from tui.sources import DashboardSources
    from uoom.errors import UsageError

    settings = current().settings
    every = refresh or settings.dash_refresh
    if as_json and not once:
        raise UsageError("--json prints one snapshot: use it with --once")
    if not once and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the dashboard needs a terminal; `uoom dash --once [--json]` prints one snapshot")
    if not once:
        # The live screen draws in a burst after each read: on the platform's own machine it would
        # take a core from the API at that moment (bench/reports/dash.md), so it yields the CPU instead.
        with contextlib.suppress(OSError):
            os.nice(NICE)
    async with DashboardSources(settings, api_key, refresh=every) as sources:
        if not once:
            from tui.app import DashApp

            await DashApp(sources, refresh=every).run_async()
            return
        snapshot = await sources.fetch()
    if as_json:
        emit_json(snapshot.as_json())
    else:
        show(snapshot)
    down = [row.name for row in snapshot.health if row.state == "down"]
    if down:
        err.print(f"down: {', '.join(down)} (the health rows say why)")
        raise typer.Exit(ExitCode.PROBLEM)


def show(snapshot: Snapshot) -> None:
    """The snapshot as tables, one per panel; the daemons' problem lines on stderr."""
    health = [{"source": h.name, "state": h.state, "detail": h.detail} for h in snapshot.health]
    render(health, ("source", "state", "detail"), as_json=False, title="health")
    latency = [
        {"group": row.group, "slo": row.slo_ms, "level": row.level, "err": _percent(row.error_rate),
         **({} if row.latency is None else {"rps": row.latency.rate_per_second, "p50": row.latency.p50,
                                            "p95": row.latency.p95, "p99": row.latency.p99})}
        for row in snapshot.latency
    ]  # fmt: skip
    rps = _number(snapshot.requests_per_second)
    render(latency, LATENCY, as_json=False, title=f"latency (ms, last 60 s; {rps} requests/s)")
    o = snapshot.outbox
    _pairs("outbox", {"pending": o.pending, "lag (s)": o.lag_seconds, "publish /s": o.publish_rate,
                      "in backoff": o.in_backoff, "dead letters": o.dead_letters_open,
                      "commit->ack p99 (ms)": o.commit_to_ack_p99_ms})  # fmt: skip
    channels = [{"rank": c.rank, "channel": c.channel_id, "score": c.score, **c.criteria,
                 "load": f"{_number(c.load)}/{_number(c.capacity)}"} for c in snapshot.channels.ranking]  # fmt: skip
    weights = snapshot.channels.weights
    about = ", ".join(f"{k} {v:g}" for k, v in weights.items()) if weights else "unknown"
    render(channels, CHANNELS, as_json=False, title=f"channels (weights: {about})")
    opt = snapshot.optimizer
    _pairs("optimizer", {"solve p99 (ms)": opt.solve_p99_ms,
                         "batch p50/p99": f"{_number(opt.batch_orders_p50)}/{_number(opt.batch_orders_p99)}",
                         "status mix": ", ".join(f"{k} {_percent(v)}" for k, v in opt.status_mix.items()),
                         "API fallback rate": _percent(opt.api_fallback_rate), "breaker": opt.breaker,
                         "reassignments/min": opt.reassignments_per_minute,
                         "trips: pairs/joins": "" if opt.trip_pairs is None
                         else f"{_number(opt.trip_pairs)}/{_number(opt.trip_joins)}",
                         "riding two": _percent(opt.riding_two_share)})  # fmt: skip
    for line in snapshot.problems:
        err.print(f"problem: {line}")


def _pairs(title: str, values: dict[str, Any]) -> None:
    rows = [{"metric": f"{title} {k}", "value": v if isinstance(v, str) else _number(v)} for k, v in values.items()]
    render(rows, ("metric", "value"), as_json=False, title=title)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"
