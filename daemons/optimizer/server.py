"""Run the optimizer under uvicorn. One worker: CP-SAT gets a thread, two workers were worse here."""

from __future__ import annotations

import uvicorn

from uoom.config import Settings


def run(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    uvicorn.run(
        "daemons.optimizer.app:create_app",
        factory=True,
        host=host or settings.optimizer_host,
        port=port or settings.optimizer_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
