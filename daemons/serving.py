"""What the HTTP daemons share: uvicorn settings, and the PostgreSQL pool and Redis client
every daemon opens once at start-up and closes at shutdown."""

from __future__ import annotations

import contextlib

import asyncpg
import redis.asyncio as aioredis
import uvicorn

from uoom.config import Settings
from uoom.stores.postgres import create_pool


def run(factory: str, host: str, port: int, workers: int = 1) -> None:
    """Serve `module:create_app` with uvloop and httptools; SIGTERM lets in-flight requests finish."""
    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", timeout_graceful_shutdown=10)  # fmt: skip


async def open_stores(settings: Settings, stack: contextlib.AsyncExitStack) -> tuple[asyncpg.Pool, aioredis.Redis]:
    pool = await create_pool(settings, timeout=2)
    stack.push_async_callback(pool.close)
    # Short socket timeouts: a stuck Redis must cost a request little, never hang it.
    redis = aioredis.from_url(settings.redis_url.get_secret_value(), socket_timeout=0.2, socket_connect_timeout=0.2)
    stack.push_async_callback(redis.aclose)
    return pool, redis
