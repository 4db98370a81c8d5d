"""The FastAPI application: one pool/client per service, opened in the lifespan, closed after."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from cachetools import TTLCache
from fastapi import FastAPI

from daemons.api import problems
from daemons.api.assign import Assigner
from daemons.api.auth import Authorizer
from daemons.api.cache_updater import CacheUpdater
from daemons.api.held_sweeper import HeldSweeper
from daemons.api.metrics import ApiMetrics, TimingAndLimits
from daemons.api.ratelimit import SharedRateLimiter
from daemons.api.read_model import CachedReadModel
from daemons.kit.health import Dependencies
from daemons.kit.logs import setup_logging
from daemons.kit.runtime import lifespan
from uoom.config import Settings
from uoom.domain.orders import Restaurant
from uoom.live_channels import LiveChannels
from uoom.stores.aws import dynamodb_client
from uoom.stores.unit_of_work import restaurant_cache

log = logging.getLogger("uoom.api")


@dataclass
class Resources:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    dynamodb: Any
    reads: CachedReadModel
    assigner: Assigner
    auth: Authorizer
    metrics: ApiMetrics
    restaurants: TTLCache[uuid.UUID, Restaurant] = field(default_factory=restaurant_cache)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings.debug)
    metrics = ApiMetrics()
    dependencies = Dependencies(log)

    async def build(app: FastAPI, stack: contextlib.AsyncExitStack, pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
        dynamodb = await stack.enter_async_context(dynamodb_client(settings, fail_fast=True))
        # DescribeTable costs botocore a few ms of event-loop CPU: at most every 10 s
        dependencies.probe("dynamodb", lambda: dynamodb.describe_table(TableName=settings.dynamodb_table), every=10)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        limiter = SharedRateLimiter(redis, settings.api_rate_limit_per_second)
        limiter.start()
        stack.push_async_callback(limiter.stop)
        reads = CachedReadModel(settings, pool, dynamodb, _dax(settings), metrics.registry)
        stack.push_async_callback(reads.close)  # before the clients it writes through close
        cache_updater = CacheUpdater(settings, reads.cache, dependencies.track("kafka"))
        cache_updater.start()
        stack.push_async_callback(cache_updater.stop)
        live = LiveChannels(pool, redis, redis_health=dependencies.track("redis"))
        await live.listen(stack)
        assigner = Assigner(settings, live, http, _optimizer_token(settings))
        sweeper = HeldSweeper(settings, pool, assigner)  # in-time only: held orders the optimizer left
        sweeper.start()
        stack.push_async_callback(sweeper.stop)
        auth = Authorizer(pool, limiter, metrics.registry)
        await auth.start()  # hears `uoom keys revoke` at once
        stack.push_async_callback(auth.close)
        app.state.resources = Resources(settings, pool, redis, dynamodb, reads, assigner, auth, metrics)
        if settings.dax_endpoint:
            dax = dependencies.track("dax")
            if reads.dax is None:
                dax.failed("not reachable at start-up; reading DynamoDB directly")
            else:
                dax.ok()
        metrics.watch(reads, assigner, limiter)
        app.state.dependencies = dependencies

    app = FastAPI(
        title="uoom order API",
        version="0.1.0",
        description="Orders (write side: PostgreSQL + outbox) and status reads (DynamoDB/DAX read model).",
        lifespan=lifespan(settings, dependencies, metrics.kit, build),
    )
    problems.install(app)
    problems.install_order_errors(app)
    from daemons.api import ops, routes

    app.include_router(routes.router)
    app.include_router(ops.router)
    app.add_middleware(TimingAndLimits, metrics=metrics, max_body_bytes=settings.api_max_body_bytes)
    return app


def _optimizer_token(settings: Settings) -> str:
    """The optimizer's key; without one the optimizer refuses the API, and orders take the
    fallback channels (as when it is down), which the metrics show."""
    from uoom.errors import UoomError
    from uoom.tokens import optimizer_token

    try:
        return optimizer_token(settings)
    except UoomError as exc:
        log.warning("%s; orders get fallback channels meanwhile", exc)
        return ""


def _dax(settings: Settings) -> Any:
    """A DAX client when DAX_ENDPOINT is set. None means reads go to DynamoDB directly: also when the
    cluster cannot be reached at start-up, so a DAX outage degrades reads instead of stopping the API."""
    if not settings.dax_endpoint:
        return None
    from amazondax import AmazonDaxClient

    endpoint = settings.dax_endpoint if "://" in settings.dax_endpoint else f"dax://{settings.dax_endpoint}"
    try:
        return AmazonDaxClient(
            endpoint_url=endpoint,
            region_name=settings.aws_region,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
        )
    except Exception as exc:  # noqa: BLE001 - the DAX client raises its own error types
        log.warning("DAX at %s unavailable (%s); reading DynamoDB directly", settings.dax_endpoint, exc)
        return None
