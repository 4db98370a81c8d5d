"""Health, readiness and metrics. Health is open; metrics need a key when configured."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from daemons.api.deps import resources

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Each dependency answers (PostgreSQL required; the others degrade gracefully)."""
    res = resources(request)

    async def check(name: str, probe: Any) -> tuple[str, str]:
        try:
            async with asyncio.timeout(1):
                await probe
            return name, "up"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return name, f"down: {type(exc).__name__}"

    results = dict(await asyncio.gather(
        check("postgres", res.pool.fetchval("SELECT 1")),
        check("redis", res.redis.ping()),
        check("dynamodb", res.dynamodb.describe_table(TableName=res.settings.dynamodb_table)),
    ))  # fmt: skip
    if res.settings.dax_endpoint:
        results["dax"] = "up" if res.reads.dax is not None else "down: not reachable at start-up"
    ready = results["postgres"] == "up"
    return JSONResponse({"ready": ready, "dependencies": results}, status_code=200 if ready else 503)


async def _metrics_allowed(request: Request) -> None:
    res = resources(request)
    if res.settings.api_metrics_require_key:
        await res.auth(request)


@router.get("/api/metrics")
async def metrics_json(request: Request) -> dict[str, Any]:
    """Request counts and exact P50/P95/P99 per route over 60 s, read-model hit rate, fallbacks."""
    await _metrics_allowed(request)
    res = resources(request)
    sources = res.assigner.sources
    assigned = sum(sources.values())
    fallbacks = assigned - sources.get("optimizer", 0)
    return {
        "routes": res.metrics.summary(),
        "stages": res.metrics.stage_summary(),
        "gcPausesByGeneration": request.app.state.gc.summary(),
        "eventLoopLagMs": request.app.state.loop_lag.window.summary(),
        "readModel": {
            "hitRate": res.reads.hit_rate(),
            "sources": res.reads.sources,
            "writes": res.reads.write_outcomes,
            "pendingWrites": res.reads.pending_writes(),
        },
        "assignment": {
            "sources": sources,
            "fallbackRate": fallbacks / assigned if assigned else None,
            "breaker": res.assigner.breaker_state,
        },
    }


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics_prometheus(request: Request) -> Response:
    """Prometheus exposition, including dynamodb_read_latency_ms and dynamodb_cache_hit_rate."""
    await _metrics_allowed(request)
    res = resources(request)
    text = generate_latest(res.metrics.registry).decode()
    rate = res.reads.hit_rate()
    text += (
        "# HELP dynamodb_cache_hit_rate Share of status reads answered by the read side (cache/DynamoDB/DAX)\n"
        "# TYPE dynamodb_cache_hit_rate gauge\n"
        f"dynamodb_cache_hit_rate {rate if rate is not None else 'NaN'}\n"
        "# HELP order_assignments_total Channel assignments by source\n"
        "# TYPE order_assignments_total counter\n"
        + "".join(f'order_assignments_total{{source="{s}"}} {n}\n' for s, n in res.assigner.sources.items())
        + "# HELP optimizer_breaker_open 1 while the optimizer circuit breaker is open\n"
        "# TYPE optimizer_breaker_open gauge\n"
        f"optimizer_breaker_open {int(res.assigner.breaker_state == 'opened')}\n"
        "# HELP rate_limit_redis_failures_total Syncs of the rate limiter that could not reach Redis\n"
        "# TYPE rate_limit_redis_failures_total counter\n"
        f"rate_limit_redis_failures_total {res.auth.limiter.redis_failures}\n"
    )
    return Response(text, media_type=CONTENT_TYPE_LATEST)
