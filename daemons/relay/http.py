"""The relay's metrics endpoints at the seed's paths, on the daemons' one server stack (FastAPI on
uvicorn), served from the relay's own event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from daemons.kit.http import EmbeddedServer, metrics_router, small_app

JSON_PATH = "/api/v1/metrics"
PROMETHEUS_PATH = "/api/v1/metrics/prometheus"


async def serve(
    host: str,
    port: int,
    document: Callable[[], Awaitable[dict[str, Any]]],
    prometheus: Callable[[], Awaitable[bytes]],
) -> EmbeddedServer:
    """Start serving (port 0 picks a free port: `.port`); `await server.stop()` to end. A port in
    use raises OSError before anything runs."""

    async def json_metrics(_: Request) -> dict[str, Any]:
        return await document()

    async def prometheus_metrics(_: Request) -> bytes:
        return await prometheus()

    app = small_app("uoom relay", metrics_router(JSON_PATH, PROMETHEUS_PATH, json_metrics, prometheus_metrics))
    server = EmbeddedServer(app, host, port)
    await server.start()
    return server
