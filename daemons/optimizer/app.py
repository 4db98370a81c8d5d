"""The optimizer service: POST /optimize (DESIGN.md contract), metrics, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from daemons.optimizer.batcher import MicroBatcher
from daemons.optimizer.load_tracker import LoadTracker
from daemons.optimizer.reoptimizer import Reoptimizer
from daemons.optimizer.state import ChannelState
from daemons.serving import freeze_startup_heap, open_stores
from uoom.assignment import Order, Result
from uoom.config import Settings
from uoom.metrics import RollingWindow

RANKING_REFRESH_SECONDS = 1.0
log = logging.getLogger("uoom.optimizer")


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    order_id: str = Field(alias="orderId", min_length=1, max_length=100)
    pickup: Point
    dropoff: Point
    value: float = Field(0.0, ge=0)
    ready_at: float | None = Field(None, alias="readyAt", ge=0, le=86400, description="seconds from now")


class OptimizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    orders: Annotated[list[OrderIn], Field(min_length=1, max_length=500)]
    deadline_ms: float | None = Field(None, alias="deadlineMs", gt=0, le=5000)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.solve_window = RollingWindow(60.0)
        self.batch_window = RollingWindow(60.0)
        self.statuses: dict[str, int] = {}
        self.assigned = 0
        self.fallbacks = 0
        self.solve_ms = Histogram(
            "optimizer_solve_ms",
            "Build + solve wall clock, ms",
            buckets=(1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 250),
            registry=self.registry,
        )
        self.batch = Histogram(
            "optimizer_batch_orders",
            "Orders per solve",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=self.registry,
        )
        self.status = Counter("optimizer_solves", "Solves by status", ["status"], registry=self.registry)

    def record(self, result: Result, requests: int) -> None:
        self.solve_window.add(result.solve_ms)
        self.batch_window.add(len(result.assignments))
        self.statuses[result.status] = self.statuses.get(result.status, 0) + 1
        self.assigned += len(result.assignments)
        self.fallbacks += sum(1 for a in result.assignments if a.fallback)
        self.solve_ms.observe(result.solve_ms)
        self.batch.observe(len(result.assignments))
        self.status.labels(result.status).inc()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            pool, redis = await open_stores(settings, stack)
            state = ChannelState(pool, redis)
            await _listen_for_channel_changes(pool, state, stack)
            batcher = MicroBatcher(
                state.current, settings.optimizer_batch_window_ms, settings.fallback_penalty, metrics.record
            )
            reoptimizer, load_tracker = Reoptimizer(settings, pool, state), LoadTracker(settings, redis)
            for part in (batcher, reoptimizer, load_tracker):
                part.start()
                stack.push_async_callback(part.stop)
            ranker = asyncio.create_task(_refresh_rankings(state))
            stack.callback(ranker.cancel)
            app.state.parts = {
                "batcher": batcher,
                "reoptimizer": reoptimizer,
                "load_tracker": load_tracker,
                "state": state,
            }
            freeze_startup_heap()
            yield

    app = FastAPI(
        title="uoom optimizer",
        version="0.1.0",
        lifespan=lifespan,
        description="CP-SAT assignment of orders to delivery channels.",
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse(
            {
                "type": "about:blank",
                "title": "Invalid request",
                "status": 422,
                "detail": "invalid field(s): " + ", ".join(e["field"] for e in errors),
                "errors": errors,
            },
            status_code=422,
            media_type="application/problem+json",
        )

    @app.post("/optimize")
    async def optimize(body: OptimizeRequest, request: Request) -> dict[str, Any]:
        """Assign each order to one channel (or the explicit fallback); never an error for a hard instance."""
        orders = [
            Order(
                o.order_id,
                (o.pickup.latitude, o.pickup.longitude),
                (o.dropoff.latitude, o.dropoff.longitude),
                o.value,
                o.ready_at,
            )
            for o in body.orders
        ]
        deadline = body.deadline_ms or settings.optimizer_deadline_ms
        mine, result = await request.app.state.parts["batcher"].submit(orders, deadline)
        return {
            "assignments": [
                {"orderId": a.order_id, "channelId": a.channel_id, "cost": float(a.cost), "etaSeconds": a.eta_seconds}
                for a in mine
            ],
            "status": result.status,
            "solveMs": round(result.solve_ms, 3),
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/metrics")
    async def metrics_json(request: Request) -> dict[str, Any]:
        """Solve time P50/P95/P99 (build + solve, wall clock), batch sizes, statuses, fallbacks."""
        parts = request.app.state.parts
        return {
            "solveMs60s": metrics.solve_window.summary(),
            "batchOrders60s": metrics.batch_window.summary(),
            "statuses": metrics.statuses,
            "fallbackRate": metrics.fallbacks / metrics.assigned if metrics.assigned else None,
            "reassignments": parts["reoptimizer"].reassigned,
            "reoptimizationRounds": parts["reoptimizer"].rounds,
            "lastRoundMs": parts["reoptimizer"].last_round_ms,
            "loadEventsApplied": parts["load_tracker"].applied,
            "redisOk": parts["state"].redis_ok,
        }

    @app.get("/metrics")
    async def metrics_prometheus(request: Request) -> Response:
        parts = request.app.state.parts
        text = generate_latest(metrics.registry).decode() + (
            "# HELP optimizer_reassignments_total Orders moved by rolling re-optimization\n"
            "# TYPE optimizer_reassignments_total counter\n"
            f"optimizer_reassignments_total {parts['reoptimizer'].reassigned}\n"
            "# HELP optimizer_fallback_ratio Share of assigned orders left to the fallback\n"
            "# TYPE optimizer_fallback_ratio gauge\n"
            f"optimizer_fallback_ratio {metrics.fallbacks / metrics.assigned if metrics.assigned else 0}\n"
        )
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return app


async def _refresh_rankings(state: ChannelState) -> None:
    while True:
        try:
            await state.publish_rankings()
        except Exception as exc:  # noqa: BLE001 - rankings are advisory; the next tick retries
            log.debug("ranking refresh failed: %s", exc)
        await asyncio.sleep(RANKING_REFRESH_SECONDS)


async def _listen_for_channel_changes(pool: Any, state: ChannelState, stack: contextlib.AsyncExitStack) -> None:
    """`uoom channels add/set` NOTIFY uoom_channels: reload at once instead of at the next TTL."""
    conn = await pool.acquire()
    stack.push_async_callback(pool.release, conn)

    def changed(*_: object) -> None:
        state.invalidate()
        asyncio.get_running_loop().create_task(state.publish_rankings())

    await conn.add_listener("uoom_channels", changed)
    stack.push_async_callback(conn.remove_listener, "uoom_channels", changed)
