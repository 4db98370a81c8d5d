"""Connections for the dashboard's actions (set the weights, replay dead letters): opened from
the dashboard's settings for one action and closed after it, like a `uoom` command's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from uoom.stores.postgres import connect


@asynccontextmanager
async def postgres(settings: Any) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(settings)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def redis(settings: Any) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(settings.redis_url.get_secret_value(), socket_connect_timeout=2, socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def stores(settings: Any) -> AsyncIterator[tuple[asyncpg.Connection, aioredis.Redis]]:
    async with redis(settings) as client, postgres(settings) as conn:
        yield conn, client


def reason(exc: BaseException) -> str:
    """One line: `Type: message`."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
