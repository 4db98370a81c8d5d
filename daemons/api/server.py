"""Run the order API under uvicorn."""

from __future__ import annotations

from daemons.kit.http import run as serve
from uoom.config import Settings


def run(settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    serve("daemons.api.app:create_app", host or settings.api_host, port or settings.api_port,
          workers or settings.api_workers)  # fmt: skip
