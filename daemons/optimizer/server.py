"""Run the optimizer under uvicorn. One worker: the solve runs in a thread; two workers were worse here."""

from __future__ import annotations

from daemons.kit.http import run as serve
from uoom.config import Settings


def run(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    serve("daemons.optimizer.app:create_app", host or settings.optimizer_host, port or settings.optimizer_port)
