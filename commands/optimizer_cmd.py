"""`uoom optimizer`: the channel assignment daemon."""

from __future__ import annotations

import typer

from commands._output import command, err


@command
def optimizer(
    host: str = typer.Option(None, "--host", help="Bind address (default UOOM_OPTIMIZER_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (default UOOM_OPTIMIZER_PORT, 3002)."),
) -> None:
    """Run the optimizer: POST /optimize (CP-SAT, micro-batched), rankings, re-optimization."""
    import asyncio

    from daemons.optimizer.server import run
    from uoom.config import Settings
    from uoom.stores.postgres import ensure_reachable

    settings = Settings()
    asyncio.run(ensure_reachable(settings))
    err.print(f"optimizer on http://{host or settings.optimizer_host}:{port or settings.optimizer_port}")
    run(settings, host, port)
