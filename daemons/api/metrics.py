"""Per-route latency (exact rolling P50/P95/P99 for JSON, histograms for Prometheus) and the
request-size limit, as one pure-ASGI middleware (BaseHTTPMiddleware costs too much per request)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from uoom.metrics import RollingWindow

Scope = dict[str, Any]


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.windows: dict[str, RollingWindow] = {}
        self.stages: dict[str, RollingWindow] = {}
        self.counts: dict[str, int] = {}
        self.latency = Histogram(
            "http_request_duration_seconds", "Request latency", ["route", "method"],
            buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.5),
            registry=self.registry,
        )  # fmt: skip
        self.responses = Counter("http_responses", "Responses", ["route", "method", "status"],
                                 registry=self.registry)  # fmt: skip

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        name = f"{method} {route}"
        window = self.windows.get(name)
        if window is None:
            window = self.windows[name] = RollingWindow(60.0)
        window.add(seconds * 1000)
        self.counts[name] = self.counts.get(name, 0) + 1
        self.latency.labels(route, method).observe(seconds)
        self.responses.labels(route, method, str(status)).inc()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one step of a request (assignment, transaction, ...) for the profile in /api/metrics."""
        started = time.perf_counter()
        try:
            yield
        finally:
            window = self.stages.get(name)
            if window is None:
                window = self.stages[name] = RollingWindow(60.0)
            window.add((time.perf_counter() - started) * 1000)

    def stage_summary(self) -> dict[str, Any]:
        return {name: window.summary() for name, window in sorted(self.stages.items())}

    def summary(self) -> dict[str, Any]:
        return {
            name: {"requests": self.counts[name], "latencyMs60s": window.summary()}
            for name, window in sorted(self.windows.items())
        }


class TimingAndLimits:
    def __init__(self, app: Any, metrics: ApiMetrics, max_body_bytes: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _too_large(scope, send, self.max_body)
            return
        started = time.perf_counter()
        status = [500]
        received = [0]
        responded = [False]  # once a 413 went out, whatever the app sends after is dropped

        async def send_wrapper(message: dict[str, Any]) -> None:
            if responded[0]:
                return
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        async def receive_limited() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            received[0] += len(message.get("body", b""))
            if received[0] > self.max_body and not responded[0]:  # chunked: no content-length
                status[0], responded[0] = 413, True
                await _too_large(scope, send, self.max_body)
            if responded[0]:
                return {"type": "http.disconnect"}  # the app stops reading and gives up
            return message

        await self.app(scope, receive_limited, send_wrapper)
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        self.metrics.record(path, scope["method"], status[0], time.perf_counter() - started)


async def _too_large(scope: Scope, send: Any, limit: int) -> None:
    body = orjson.dumps({"type": "about:blank", "title": "Payload too large", "status": 413,
                         "detail": f"request body over {limit} bytes", "instance": scope["path"]})  # fmt: skip
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
