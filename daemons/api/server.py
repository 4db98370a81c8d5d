"""Run the API under uvicorn (uvloop, httptools)."""

from __future__ import annotations

import uvicorn

from uoom.config import Settings


def run(settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    uvicorn.run(
        "daemons.api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,  # in-flight requests finish on SIGTERM
    )
