"""`uoom serve`: the order API daemon."""

from __future__ import annotations

import typer

from commands._output import command, err


@command
def serve(
    host: str = typer.Option(None, "--host", help="Bind address (default UOOM_API_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (default UOOM_API_PORT, 3001)."),
    workers: int = typer.Option(None, "--workers", min=1, help="uvicorn worker processes."),
) -> None:
    """Run the order API (FastAPI on uvicorn). SIGTERM lets in-flight requests finish."""
    import asyncio

    from daemons.api.server import run
    from uoom.config import Settings
    from uoom.stores.postgres import ensure_reachable

    settings = Settings()
    asyncio.run(ensure_reachable(settings))
    err.print(f"order API on http://{host or settings.api_host}:{port or settings.api_port}")
    run(settings, host, port, workers)
