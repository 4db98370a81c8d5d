"""The optimizer service: POST /optimize (DESIGN.md contract, behind the optimizer's key), metrics
and health (open, as the API's)."""

from __future__ import annotations

import contextlib
import logging
from functools import partial
from typing import Any

from fastapi import FastAPI, Request

from daemons.kit import problems
from daemons.kit.health import Dependencies
from daemons.kit.http import metrics_router
from daemons.kit.limits import BodyLimit
from daemons.kit.logs import setup_logging
from daemons.kit.metrics import health_document
from daemons.kit.runtime import lifespan
from daemons.optimizer import routes
from daemons.optimizer.batcher import MicroBatcher
from daemons.optimizer.load_tracker import LoadTracker
from daemons.optimizer.metrics import OptimizerMetrics
from daemons.optimizer.ranking_publisher import RankingPublisher
from daemons.optimizer.reoptimizer import Reoptimizer
from daemons.optimizer.trips import OpenTripsFeed, TripPlanner
from uoom.config import Settings
from uoom.live_channels import LiveChannels
from uoom.stores.open_trips import all_open_trips
from uoom.tokens import optimizer_token

log = logging.getLogger("uoom.optimizer")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings.debug)
    metrics = OptimizerMetrics()
    dependencies = Dependencies(log)

    async def build(app: FastAPI, stack: contextlib.AsyncExitStack, pool: Any, redis: Any) -> None:
        live = LiveChannels(pool, redis, redis_health=dependencies.track("redis"))
        publisher = RankingPublisher(live, redis, pool)
        await live.listen(stack, on_change=publisher.publish_now)
        feed = OpenTripsFeed(partial(all_open_trips, pool))
        trips = TripPlanner(
            feed, settings.bundle_ready_within_s, settings.bundle_on_time_s, metrics.trips, feed.answered
        )
        batcher = MicroBatcher(live.current, settings.optimizer_batch_window_ms, settings.fallback_penalty,
                               metrics.record, settings.optimizer_max_queued_orders, metrics.shed, trips)  # fmt: skip
        reoptimizer = Reoptimizer(settings, pool, live, trips)
        load_tracker = LoadTracker(settings, redis, dependencies.track("kafka"))
        for part in (feed, batcher, reoptimizer, load_tracker, publisher):
            part.start()
            stack.push_async_callback(part.stop)
        app.state.settings = settings
        app.state.parts = {"batcher": batcher, "reoptimizer": reoptimizer, "load_tracker": load_tracker, "live": live}
        metrics.watch(reoptimizer, load_tracker)

    app = FastAPI(
        title="uoom optimizer",
        version="0.1.0",
        lifespan=lifespan(settings, dependencies, metrics.kit, build),
        description="Assignment of orders to delivery channels.",
    )

    app.state.token = optimizer_token(settings).encode()  # before start-up: no key, no daemon
    problems.install(app, log)
    app.include_router(routes.router)
    app.add_middleware(BodyLimit, max_body_bytes=settings.optimizer_max_body_bytes)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def document(_: Request) -> dict[str, Any]:
        """Solve time P50/P95/P99 (build + solve, wall clock), batch sizes, statuses, fallbacks."""
        return await health_document(metrics.kit, dependencies, metrics.section())

    async def prometheus(_: Request) -> bytes:
        return metrics.kit.prometheus()

    app.include_router(metrics_router("/api/metrics", "/metrics", document, prometheus))

    return app
