"""Health, readiness and metrics. Health is open; metrics need a key when configured."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from daemons.api.deps import resources
from daemons.api.metrics import api_section
from daemons.kit.http import metrics_router
from daemons.kit.metrics import health_document

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


async def _document(request: Request) -> dict[str, Any]:
    """Exact P50/P95/P99 per route and stage over 60 s, dependencies, read model, assignment."""
    res = resources(request)
    problems = ["optimizer: circuit breaker open (orders get fallback channels)"] * (
        res.assigner.breaker.state == "opened"
    )
    section = api_section(res.reads, res.assigner, res.auth.limiter, res.auth.limited,
                          res.metrics.responses_by_route())  # fmt: skip
    return await health_document(res.metrics.kit, request.app.state.dependencies, section, problems=problems)


async def _prometheus(request: Request) -> bytes:
    """Including dynamodb_read_latency_ms and dynamodb_cache_hit_rate (the seed's names)."""
    return resources(request).metrics.kit.prometheus()


router.include_router(metrics_router("/api/metrics", "/metrics", _document, _prometheus, [Depends(_metrics_allowed)]))
