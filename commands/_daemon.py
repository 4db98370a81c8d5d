"""What the daemon verbs (serve, optimizer, relay) share: `--check`, which asks the running
daemon's metrics (docs/metrics.md), prints one line on stderr and exits 0 when it is healthy,
1 when not; and the start of an HTTP daemon."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from commands._context import current
from commands._output import ExitCode, err

CHECK_OPTION = typer.Option(
    False, "--check", help="Ask the running daemon (its metrics endpoint) whether it is healthy; exit 0 or 1."
)


async def ask(name: str, url: str, detail: Callable[[dict[str, Any]], str] | None = None) -> typer.Exit:
    from daemons.kit.check import check

    healthy, line = await check(name, url, detail)
    err.print(line)
    return typer.Exit(ExitCode.OK if healthy else ExitCode.PROBLEM)


def run_or_check(name: str, url: str, check: bool, run: Callable[[], None]) -> None:
    """`--check`: ask the daemon serving at `url`. Otherwise make sure PostgreSQL answers (one
    line naming it when not), say where the daemon serves, and run it."""
    import asyncio

    if check:
        raise asyncio.run(ask(name, f"{url}/api/metrics"))
    asyncio.run(current().check_postgres())
    err.print(f"{name} on {url}")
    run()
