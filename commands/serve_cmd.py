"""`uoom serve`: the order API daemon."""

from __future__ import annotations

import typer

from commands._context import current
from commands._daemon import CHECK_OPTION, run_or_check
from commands._output import command


@command
def serve(
    host: str = typer.Option(None, "--host", help="Bind address (default UOOM_API_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (default UOOM_API_PORT, 3001)."),
    workers: int = typer.Option(None, "--workers", min=1, help="uvicorn worker processes."),
    check: bool = CHECK_OPTION,
) -> None:
    """Run the order API (FastAPI on uvicorn). SIGTERM lets in-flight requests finish.

    Exit codes: 0 stopped cleanly / healthy, 1 failed / unhealthy, 2 usage error.
    """
    settings = current().settings

    def start() -> None:
        from daemons.api.server import run

        run(settings, host, port, workers)

    run_or_check("order API", f"http://{host or settings.api_host}:{port or settings.api_port}", check, start)
