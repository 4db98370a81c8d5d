"""Fixtures more than one integration module uses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from uoom import demo, migrate
from uoom.config import Settings
from uoom.stores.postgres import create_pool


@pytest.fixture
async def demo_world(
    scratch_dsn: str, settings: Settings, private_redis_url: str
) -> AsyncIterator[tuple[Settings, asyncpg.Pool, aioredis.Redis]]:
    """A migrated scratch database with the demo data, a pool on it and a Redis database of the
    test's own: (settings pointing there, pool, redis). Rolling re-optimization is off (an hour
    apart) unless a test runs a round itself."""
    await migrate.up(scratch_dsn)
    local = settings.model_copy(update={"database_url": SecretStr(scratch_dsn), "dispatch_interval": 3600})
    pool = await create_pool(local)
    redis = aioredis.from_url(private_redis_url)
    async with pool.acquire() as conn:
        await demo.load(conn)
    yield local, pool, redis
    await pool.close()
    await redis.aclose()
