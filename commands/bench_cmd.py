"""`uoom bench orders|status|mixed`: open-loop load on an order API, a report (latency from the
intended send times, errors by kind, CPU per process of the platform, the machine, the versions,
the command), then the books of every order it created (uoom/books.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from commands._context import current
from commands._output import ExitCode, command, err, fail, render

if TYPE_CHECKING:
    from uoom.books import Books
    from uoom.loadgen.openloop import Run

RUN_COLUMNS = ("name", "rate", "sent", "ok", "errors", "late", "p50", "p90", "p99", "p99.9", "max", "achieved")
LATENCY = ("p50", "p90", "p99", "p99.9", "max")
HEADERS = {"rate": "rate/s", "achieved": "ok/s", "p50": "p50 ms", "p90": "p90 ms", "p99": "p99 ms",
           "p99.9": "p99.9 ms", "max": "max ms"}  # fmt: skip


@command
async def bench(
    scenario: str = typer.Argument(
        ..., help="orders (POST /api/orders), status (GET the status of orders created first) or mixed (both)."
    ),
    rate: float = typer.Option(..., "--rate", help="Requests per second, sent on a fixed schedule (open loop)."),
    duration: float = typer.Option(..., "--duration", help="Seconds of load."),
    json_file: Path | None = typer.Option(
        None, "--json", metavar="FILE", help="Also write the report as JSON (camelCase; docs/cli.md) to FILE."
    ),
    against: str | None = typer.Option(
        None, "--against", metavar="URL", help="The API of any deployment (default: the local one, as `uoom config`)."
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="UOOM_API_KEY",
        help="The API key to send (UOOM_API_KEY); `uoom keys create` makes one.",
    ),
    status_share: float = typer.Option(0.8, "--status-share", help="mixed: the share of the rate that reads status."),
    orders: int = typer.Option(100, "--orders", help="status and mixed: orders created first, whose status is read."),
    settle: float = typer.Option(30.0, "--settle", help="Seconds the books wait for the read model and Kafka."),
) -> None:
    """Load an order API on a fixed schedule and report P50/P90/P99/P99.9/max (from each request's
    intended send time), the achieved rate, errors by kind, CPU per process of the local platform,
    the machine, the versions and the command; then check the books of every order created: its
    row in PostgreSQL, its read-model item, its order.created on Kafka (the parts reachable from
    this machine's settings; the report says which were checked).

    Exit codes: 0 done and the books hold, 1 the API did not answer or refused the key, or the books
    do not hold (locally also: a part could not be checked), 2 a usage error.
    """
    import os
    import sys
    import uuid
    from datetime import UTC, datetime, timedelta

    import aiohttp
    import orjson

    from commands._output import camel
    from uoom.books import audit
    from uoom.errors import UsageError
    from uoom.loadgen.cpu import CpuMeter, platform_pids
    from uoom.loadgen.machine import command_line, machine, versions
    from uoom.loadgen.openloop import connector
    from uoom.loadgen.scenarios import SCENARIOS, Plan, Target, execute

    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    for name, value in (("--rate", rate), ("--duration", duration)):
        if not value > 0:
            raise UsageError(f"{name} must be above 0 (got {value:g})")
    if not 0 <= status_share <= 1 or orders < 1 or settle < 0:
        raise UsageError("--status-share must be within 0-1, --orders at least 1, --settle at least 0")
    if against is not None and not against.startswith(("http://", "https://")):
        raise UsageError(f"--against must be an http(s) URL (got {against!r})")
    if not api_key:
        raise UsageError("no API key: pass --api-key or set UOOM_API_KEY (`uoom keys create NAME` makes one)")
    settings = current().settings
    local = against is None
    target = Target((against or settings.effective_api_url).rstrip("/"), api_key)
    plan = Plan(scenario, rate, duration, status_share, orders)
    async with aiohttp.ClientSession(connector=connector(), timeout=aiohttp.ClientTimeout(total=10)) as session:
        await _reachable(session, target, str(uuid.uuid4()))
        meter = CpuMeter({**platform_pids(settings.home / "run"), "bench client": os.getpid()}) if local else None
        since = datetime.now(UTC) - timedelta(seconds=5)  # the broker's clock may lag ours a little
        with _Progress() as progress:
            if meter:
                meter.start()
            outcome = await execute(session, target, plan, progress.update)
            cpu = meter.stop() if meter else {}
    books: Books | None = None
    if outcome.created:
        with err.status(f"checking the books of {len(outcome.created)} orders"):
            books = await audit(settings, outcome.created, since=since, settle_s=settle)
    report = {
        "command": command_line(["uoom", *sys.argv[1:]]),
        "scenario": scenario,
        "target": target.url,
        "local": local,
        "rate": rate,
        "duration": duration,
        "when": datetime.now(UTC).isoformat(),
        "runs": [{k: v for k, v in r.as_json().items() if k != "cpu_cores"} for r in outcome.runs],  # CPU: below
        "cpu_cores": cpu,
        "machine": machine(),
        "versions": await versions(settings if local else None),
        "books": books.as_json() if books else None,
    }
    _show(outcome.runs, cpu, books, report)
    if json_file is not None:
        json_file.write_bytes(orjson.dumps(camel(report), option=orjson.OPT_INDENT_2) + b"\n")  # noqa: ASYNC240
        err.print(f"report: {json_file}")
    if books is not None and not (books.ok if local else books.holds):
        raise typer.Exit(ExitCode.PROBLEM)


async def _reachable(session: Any, target: Any, probe_id: str) -> None:
    """Fail in one line, before any load, when the API does not answer or refuses the key."""
    import aiohttp

    try:
        async with session.get(f"{target.url}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as response:
            await response.read()
        async with session.get(f"{target.url}/api/orders/{probe_id}/status", headers=target.headers) as response:
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise fail(f"the API at {target.url} is not answering ({type(exc).__name__}); start it with `uoom up`, "
                   "or check --against") from None  # fmt: skip
    if response.status in (401, 403):
        raise fail(f"the API at {target.url} refused the API key ({response.status}); check --api-key / UOOM_API_KEY")


def _show(runs: list[Run], cpu: dict[str, float], books: Books | None, report: dict[str, Any]) -> None:
    rows = []
    for r in runs:
        row = r.as_json()
        latency = row["latency_ms"]
        rows.append({"name": r.name, "rate": f"{r.rate:g}", "sent": r.sent, "ok": r.ok, "late": r.late_starts,
                     "errors": ", ".join(f"{k}: {v}" for k, v in sorted(r.errors.items())) or "0",
                     **{k: "-" if latency[k] is None else f"{latency[k]:.2f}" for k in LATENCY},
                     "achieved": f"{r.achieved_rate:.1f}"})  # fmt: skip
    render(rows, RUN_COLUMNS, as_json=False, title="latency from the intended send time", headers=HEADERS)
    if cpu:
        cores = [
            {"process": name, "cores": f"{value:.3f}"} for name, value in sorted(cpu.items(), key=lambda kv: -kv[1])
        ]
        render(cores, ("process", "cores"), as_json=False, title="CPU during the run (1.0 = one core)")
    m = report["machine"]
    facts = [("machine", f"{m['cpus']} x {m['cpu_model']}, {m['memory_gb']} GB, load {m['load_average'][0]:.2f}"),
             ("versions", ", ".join(f"{k} {v}" for k, v in report["versions"].items())),
             ("command", report["command"])]  # fmt: skip
    render([{"what": k, "value": v} for k, v in facts], ("what", "value"), as_json=False)
    for line in books.lines() if books else ["books: no order was created, nothing to check"]:
        typer.echo(line)


class _Progress:
    """A live line on stderr while the load runs (a terminal only): sent, ok, errors, P99 so far."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._live: Any = None

    def __enter__(self) -> _Progress:
        if err.console.is_terminal:
            from rich.live import Live

            self._live = Live("", console=err.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def update(self, run: Run) -> None:
        self._runs[run.name] = run
        if self._live is None:
            return
        parts = []
        for r in self._runs.values():
            p99 = r.latency.percentile(99)
            parts.append(f"{r.name.split()[0]}: sent {r.sent} ok {r.ok} errors {sum(r.errors.values())} "
                         f"P99 {'-' if p99 is None else f'{p99:.1f} ms'}")  # fmt: skip
        self._live.update(" | ".join(parts))
