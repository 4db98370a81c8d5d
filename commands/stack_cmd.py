"""`uoom stack up|down|status|logs`: the local services as child processes under UOOM_HOME."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from commands._confirm import YES_OPTION, confirm
from commands._context import current
from commands._output import EXIT_CODES, JSON_OPTION, ExitCode, command, emit_json, err, fail, group, render

if TYPE_CHECKING:
    from uoom.stack import Stack, StackStatus

app = group(
    "The local stack: PostgreSQL, Redis, Kafka, DynamoDB.\n\n"
    f"Child processes under UOOM_HOME, no Docker.\n\n{EXIT_CODES}",
)
LOST = "LOST when it stops (kept in memory only)"
KEPT = "kept, but unavailable until `uoom stack up`"
SERVICES = typer.Argument(None, help="Services (postgres, redis, kafka, dynamodb); default all.", show_default=False)


def _stack(services: list[str] | None = None) -> Stack:
    from uoom.stack import Stack

    stack = Stack(current().settings)
    stack.select(services)  # an unknown name is a usage error before anything starts
    return stack


def show(status: StackStatus, as_json: bool) -> None:
    if as_json:
        emit_json(status.as_json())
        return
    rows = [
        {
            "service": s.name,
            "url": s.url,
            "pid": s.pid or ("external" if s.up else "-"),
            "state": "up" if s.up else f"down: {s.error or 'no answer'}",
            "version": s.version,
        }
        for s in status
    ]
    render(rows, ("service", "url", "pid", "state", "version"), as_json=False, title="local stack")


@app.command()
@command
async def up(services: list[str] | None = SERVICES, as_json: bool = JSON_OPTION) -> None:
    """Start what is not running and wait until each answers its own protocol (idempotent).

    The first start fetches the Kafka jars with Maven (a few minutes, once per machine).
    """
    started = time.monotonic()
    status = await bring_up(_stack(services), services)
    show(status, as_json)
    err.print(f"stack up in {time.monotonic() - started:.1f} s; logs: uoom stack logs SERVICE")


async def bring_up(stack: Stack, services: list[str] | None = None) -> StackStatus:
    """`Stack.up`, saying on stderr what each service is doing: a spinner on a terminal, one line
    per step otherwise (a first Kafka start fetches its jars for minutes: never in silence)."""
    steps: dict[str, str] = {}
    with err.status("checking the local stack") as update:

        def progress(service: str, step: str) -> None:
            steps[service] = step
            if not err.console.is_terminal:
                if step != "up":
                    err.print(f"{service}: {step}")
                return
            update("; ".join(f"{name}: {what}" for name, what in steps.items() if what != "up") or "all up")

        return await stack.up(services, progress=progress)


@app.command()
@command
async def down(services: list[str] | None = SERVICES, yes: bool = YES_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Stop the services this stack started; services it did not start are left alone.

    When one holds data (PostgreSQL rows, Kafka messages: kept on disk; Redis keys, DynamoDB
    tables: in memory, lost) it says what and asks first (--yes to skip, required without a
    terminal: exit 2 otherwise). A stack holding nothing stops without a question.
    """
    stack = _stack(services)
    held = await stack.holdings(services)
    if held:
        confirm(
            f"stop {', '.join(held)} holding data",
            yes,
            losses=[f"{name}: {h.what}: {LOST if h.lost else KEPT}" for name, h in held.items()],
            again=" ".join(["uoom stack down", *(services or [])]),
        )
    stopped = stack.down(services)
    if as_json:
        emit_json({"stopped": stopped})
    else:
        err.print(f"stopped: {', '.join(stopped) or 'nothing (none was started here)'}")


@app.command()
@command
async def status(services: list[str] | None = SERVICES, as_json: bool = JSON_OPTION) -> None:
    """Each service: URL, pid (if started here), up or down, version. Exit 1 if any is down."""
    result = await _stack(services).status(services)
    show(result, as_json)
    if not result.all_up:
        raise typer.Exit(ExitCode.PROBLEM)


@app.command()
@command
def logs(
    service: str = typer.Argument(..., help="postgres, redis, kafka or dynamodb"),
    lines: int = typer.Option(50, "--lines", "-n", min=0, help="How many last lines."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
) -> None:
    """Print the last lines of a service's log file."""
    from collections import deque

    (chosen,) = _stack().select([service])
    path = chosen.log_file
    if not path.exists():
        raise fail(f"no log file at {path}: {service} was not started by this stack")
    with path.open(errors="replace") as handle:
        for line in deque(handle, maxlen=lines):
            typer.echo(line, nl=False)
        while follow:
            line = handle.readline()
            if line:
                typer.echo(line, nl=False)
            else:
                time.sleep(0.2)
