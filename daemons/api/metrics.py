"""The API's numbers through the daemon kit: per-route latency (exact rolling P50/P95/P99 for the
JSON, histograms for Prometheus) and per-stage timings, recorded with the request-size limit by
one pure-ASGI middleware (BaseHTTPMiddleware costs too much per request)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

from daemons.kit.metrics import DaemonMetrics, samples, total

if TYPE_CHECKING:
    from prometheus_client import Counter

    from daemons.api.assign import Assigner
    from daemons.api.ratelimit import SharedRateLimiter
    from daemons.api.read_model import CachedReadModel

Scope = dict[str, Any]
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.5)


class ApiMetrics:
    def __init__(self) -> None:
        m = self.kit = DaemonMetrics("api")
        self.registry = m.registry
        self.latency = m.histogram("http_request_duration_seconds", "Request latency", BUCKETS, ("route", "method"))
        self.responses = m.counter("http_responses", "Responses", ("route", "method", "status"))
        self.stages = m.histogram("api_stage_duration_seconds", "Steps of a request (assignment, transaction, ...)",
                                  BUCKETS, ("stage",))  # fmt: skip

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        key = f"{method} {route}"
        latency = self.kit.latencies.get(key) or self.kit.latency(key, self.latency.labels(route, method))
        latency.observe_ms(seconds * 1000)
        self.responses.labels(route, method, str(status)).inc()

    def responses_by_route(self) -> dict[str, dict[str, int]]:
        """`http_responses_total` read through the collector (no second count): per `METHOD /route`,
        as the latency map names it, the responses by status class since the process started."""
        found: dict[str, dict[str, int]] = {}
        for labels, value in samples(self.responses, "_total"):
            by_class = found.setdefault(f"{labels['method']} {labels['route']}", dict.fromkeys(STATUS_CLASSES, 0))
            status_class = labels["status"][:1] + "xx"
            if status_class in by_class:
                by_class[status_class] += int(value)
        return dict(sorted(found.items()))

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one step of a request (assignment, transaction, ...): `latency[name]` in the JSON."""
        latency = self.kit.latencies.get(name) or self.kit.latency(name, self.stages.labels(name))
        with latency.time():
            yield

    def watch(self, reads: CachedReadModel, assigner: Assigner, limiter: SharedRateLimiter) -> None:
        """Expose what the read model, the assigner and the rate limiter keep themselves."""
        m = self.kit
        m.gauge("dynamodb_cache_hit_rate", "Share of status reads answered by the read side (cache/DynamoDB/DAX)",
                reads=lambda: _or_nan(reads.hit_rate()))  # fmt: skip
        m.counter_reading("order_assignments", "Channel assignments by source", lambda: assigner.sources, "source")
        m.gauge("optimizer_breaker_open", "1 while the optimizer circuit breaker is open",
                reads=lambda: float(assigner.breaker.state == "opened"))  # fmt: skip
        m.counter_reading("rate_limit_redis_failures", "Syncs of the rate limiter that could not reach Redis",
                          lambda: limiter.redis_failures)  # fmt: skip


def api_section(reads: CachedReadModel, assigner: Assigner, limiter: SharedRateLimiter,
                limited: Counter, responses: dict[str, dict[str, int]]) -> dict[str, Any]:  # fmt: skip
    """The `api` section of the metrics JSON (docs/metrics.md)."""
    sources = dict(assigner.sources)
    assigned = sum(n for source, n in sources.items() if source != "held")  # held: the optimizer's, later
    fallbacks = assigned - sources.get("optimizer", 0)
    return {
        "readModel": {
            "hitRate": reads.hit_rate(),
            "sources": reads.sources,
            "writes": reads.write_outcomes,
            "pendingWrites": reads.pending_writes(),
        },
        "assignment": {
            "sources": sources,
            "fallbackRate": fallbacks / assigned if assigned else None,
            "breaker": assigner.breaker.state,
        },
        "rateLimit": {"limited": total(limited), "redisFailures": limiter.redis_failures},
        "responses": responses,
    }


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


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
