"""`uoom stack up|down|status|logs`: the local services as child processes under UOOM_HOME."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from commands._output import JSON_OPTION, ExitCode, command, emit_json, err, fail

if TYPE_CHECKING:
    from uoom.stack import StackStatus

app = typer.Typer(help="The local stack: PostgreSQL, Redis, Kafka, DynamoDB (no Docker).", no_args_is_help=True)
SERVICES = typer.Argument(None, help="Services (postgres, redis, kafka, dynamodb); default all.")


def _stack():  # type: ignore[no-untyped-def]
    from uoom.config import Settings
    from uoom.stack import Stack

    return Stack(Settings())


def show(status: StackStatus, as_json: bool) -> None:
    if as_json:
        emit_json(status.as_json())
        return
    from rich.table import Table

    table = Table("service", "url", "pid", "state", "version")
    for s in status:
        state = "[green]up[/]" if s.up else f"[red]down[/] {s.error or ''}"
        pid = str(s.pid) if s.pid else ("external" if s.up else "-")
        table.add_row(s.name, s.url, pid, state, s.version or "")
    err.print(table)


@app.command()
@command
async def up(services: list[str] | None = SERVICES, as_json: bool = JSON_OPTION) -> None:
    """Start what is not running and wait until each answers its own protocol (idempotent)."""
    started = time.monotonic()
    status = await _stack().up(services)
    show(status, as_json)
    if not as_json:
        err.print(f"stack up in {time.monotonic() - started:.1f} s; logs: uoom stack logs")


@app.command()
@command
def down(services: list[str] | None = SERVICES, as_json: bool = JSON_OPTION) -> None:
    """Stop the services this stack started; services it did not start are left alone."""
    stopped = _stack().down(services)
    if as_json:
        emit_json({"stopped": stopped})
    else:
        err.print(f"stopped: {', '.join(stopped) or 'nothing (none was started here)'}")


@app.command()
@command
async def status(services: list[str] | None = SERVICES, as_json: bool = JSON_OPTION) -> None:
    """Each service: URL, pid (if started here), up or down, version. Exit 1 if any is down."""
    result = await _stack().status(services)
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
