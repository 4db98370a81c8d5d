"""Drive the API's Authorizer as a request would, against a real PostgreSQL and Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from fastapi import Request
from prometheus_client import CollectorRegistry

from daemons.api.auth import Authorizer
from daemons.api.problems import UNAVAILABLE, Problem
from daemons.api.ratelimit import SharedRateLimiter
from uoom import apikeys, migrate


def request(key: str | None, address: str = "10.0.0.1") -> Request:
    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    return Request({"type": "http", "method": "GET", "path": "/api/x", "headers": headers, "client": (address, 40000)})


@dataclass
class Answer:
    status: int
    seconds: float
    key_id: str | None = None


async def answer(auth: Authorizer, key: str | None, address: str = "10.0.0.1") -> Answer:
    """What the API would answer: 200 with the key's id, a problem's status, or 503 when a
    dependency failed (the app's handler turns UNAVAILABLE into a 503)."""
    started = time.monotonic()
    try:
        key_id = await auth(request(key, address))
    except Problem as problem:
        return Answer(problem.status, time.monotonic() - started)
    except UNAVAILABLE:
        return Answer(503, time.monotonic() - started)
    return Answer(200, time.monotonic() - started, key_id)


@dataclass
class AuthRig:
    auth: Authorizer
    pool: asyncpg.Pool
    redis: aioredis.Redis
    dsn: str


@asynccontextmanager
async def auth_rig(dsn: str, redis_url: str, pool_size: int = 4) -> AsyncIterator[AuthRig]:
    """A migrated scratch database, a small pool, and an Authorizer with a generous rate limit."""
    await migrate.up(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size, command_timeout=10)
    redis = aioredis.from_url(redis_url)
    limiter = SharedRateLimiter(redis, 1_000_000)
    auth = Authorizer(pool, limiter, CollectorRegistry())
    try:
        yield AuthRig(auth, pool, redis, dsn)
    finally:
        await auth.close()
        await pool.close()
        await redis.aclose()


async def new_key(pool: asyncpg.Pool, name: str) -> tuple[str, str]:
    """(key id, key)"""
    async with pool.acquire() as conn:
        key_id, key = await apikeys.create(conn, name)
    return str(key_id), key
