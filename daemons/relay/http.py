"""The relay's metrics endpoints, as the seed has them, on aiohttp's small server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

JSON_PATH = "/api/v1/metrics"
PROMETHEUS_PATH = "/api/v1/metrics/prometheus"


async def serve(
    host: str,
    port: int,
    summary: Callable[[], Awaitable[dict[str, Any]]],
    prometheus: Callable[[], Awaitable[bytes]],
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (to clean up) and the bound port (port 0 picks one)."""

    async def json_metrics(_: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(await summary()), content_type="application/json")

    async def prometheus_metrics(_: web.Request) -> web.Response:
        response = web.Response(body=await prometheus())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get(JSON_PATH, json_metrics)
    app.router.add_get(PROMETHEUS_PATH, prometheus_metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = port
    for address in runner.addresses:
        bound = int(address[1])
    return runner, bound
