"""One HTTP server stack for the three daemons: FastAPI on uvicorn (uvloop, httptools).

`run` serves an app factory as a daemon of its own (the API, the optimizer); `EmbeddedServer`
serves an app inside a daemon's running event loop (the relay's metrics), with no signal
handling of its own. `metrics_router` gives every daemon the same two metrics endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import orjson
import uvicorn
from fastapi import APIRouter, FastAPI, Request, params
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

GRACEFUL_SHUTDOWN_SECONDS = 10
STARTUP_FAILURE = 1


class _Server(uvicorn.Server):
    """uvicorn's server, handling SIGINT/SIGTERM (or not, when embedded) without re-raising the
    signal after its graceful shutdown: uvicorn does, so a clean stop looked like a death by
    SIGTERM (exit -15); here a graceful stop exits 0."""

    def __init__(self, config: uvicorn.Config, *, handle_signals: bool) -> None:
        super().__init__(config)
        self.handle_signals = handle_signals

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self.handle_signals:
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# A server must keep an idle connection open longer than any client keeps it in its pool (ours:
# aiohttp 15 s, the dashboard 60 s; a load balancer's idle timeout, commonly 60 s). With uvicorn's
# 5 s a request sent on a connection just before that timer fired, and read only after it (a
# CPU-starved loop), was dropped unanswered: the client saw a closed connection.
KEEP_ALIVE_SECONDS = 75

# log_config=None: the daemon's own logging set-up (daemons.kit.logs) formats uvicorn's lines too
OPTIONS: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "access_log": False, "log_config": None,
                           "log_level": "warning", "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
                           "timeout_keep_alive": KEEP_ALIVE_SECONDS}  # fmt: skip


def run(factory: str, host: str, port: int, workers: int = 1) -> None:
    """Serve `module:create_app` until SIGINT/SIGTERM, which let in-flight requests finish."""
    if workers > 1:  # uvicorn's process manager; it exits 0 after a graceful stop already
        uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, **OPTIONS)
        return
    server = _Server(uvicorn.Config(factory, factory=True, host=host, port=port, **OPTIONS), handle_signals=True)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class EmbeddedServer:
    """An app served from the caller's event loop. The socket is bound before anything starts,
    so a port in use is an OSError for the caller, and port 0 picks a free one (`port`)."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self._socket = socket.create_server((host, port), reuse_port=False)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(app, host=host, port=self.port, lifespan="off", **OPTIONS)
        self._server = _Server(config, handle_signals=False)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started and not self._task.done():  # noqa: ASYNC110 - uvicorn has no "started" event
            await asyncio.sleep(0.01)
        if self._task.done():
            await self._task  # raises what stopped it

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._socket.close()


def json_response(body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer as it is: returned from a route, FastAPI neither validates nor re-serialises
    it against the route's `response_model` (which still documents it)."""
    return Response(orjson.dumps(body), status_code=status_code, headers=headers, media_type="application/json")


def metrics_router(
    json_path: str,
    prometheus_path: str,
    document: Callable[[Request], Awaitable[dict[str, Any]]],
    prometheus: Callable[[Request], Awaitable[bytes]],
    dependencies: Sequence[params.Depends] = (),
) -> APIRouter:
    """The JSON document of docs/metrics.md and the Prometheus exposition, at the daemon's paths."""
    router = APIRouter(dependencies=list(dependencies))

    @router.get(json_path, summary="Metrics as JSON (docs/metrics.md)")
    async def metrics_json(request: Request) -> Response:
        return json_response(await document(request))

    @router.get(prometheus_path, summary="Metrics in the Prometheus text format", response_class=PlainTextResponse)
    async def metrics_prometheus(request: Request) -> Response:
        return Response(await prometheus(request), media_type=CONTENT_TYPE_LATEST)

    return router


def small_app(title: str, *routers: APIRouter) -> FastAPI:
    """An app of a few routes (no OpenAPI pages): the relay's metrics."""
    app = FastAPI(title=title, openapi_url=None, docs_url=None, redoc_url=None)
    for router in routers:
        app.include_router(router)
    return app
