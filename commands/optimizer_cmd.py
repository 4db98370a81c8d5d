"""`uoom optimizer`: the channel assignment daemon."""

from __future__ import annotations

import typer

from commands._context import current
from commands._daemon import CHECK_OPTION, run_or_check
from commands._output import command


@command
def optimizer(
    host: str = typer.Option(None, "--host", help="Bind address (default UOOM_OPTIMIZER_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (default UOOM_OPTIMIZER_PORT, 3002)."),
    check: bool = CHECK_OPTION,
) -> None:
    """Run the optimizer: channel assignment by exact min-cost flow.

    POST /optimize (micro-batched), the live rankings, rolling re-optimization.
    Exit codes: 0 stopped cleanly / healthy, 1 failed / unhealthy, 2 usage error.
    """
    settings = current().settings

    def start() -> None:
        from daemons.optimizer.server import run

        run(settings, host, port)

    url = f"http://{host or settings.optimizer_host}:{port or settings.optimizer_port}"
    run_or_check("optimizer", url, check, start)
