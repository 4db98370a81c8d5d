"""API keys: random 256-bit tokens, stored only as their sha256 (a slow hash adds nothing at
that entropy), shown once at creation."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from uoom.errors import UoomError, UsageError
from uoom.stores.redis_keys import REVOKED_API_KEYS as REVOKED_CHANNEL

PREFIX = "uoom_"
ANNOUNCED_FOR_SECONDS = 24 * 3600  # an API process away from Redis longer renews from PostgreSQL anyway


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create(conn: asyncpg.Connection, name: str) -> tuple[uuid.UUID, str]:
    name = name.strip()
    if not name or len(name) > 100:
        raise UsageError("a key name is 1 to 100 characters")
    key = new_key()
    key_id = uuid.uuid4()
    try:
        await conn.execute(
            "INSERT INTO api_keys (id, name, key_hash, prefix) VALUES ($1, $2, $3, $4)",
            key_id,
            name,
            hash_key(key),
            key[: len(PREFIX) + 6],
        )
    except asyncpg.UniqueViolationError:
        raise UsageError(f"a key named '{name}' exists already; pick another name") from None
    return key_id, key


async def list_keys(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, name, prefix, created_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at"
    )
    return [dict(r) for r in rows]


async def find(conn: asyncpg.Connection, name: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT id, name, prefix, created_at, revoked_at, last_used_at FROM api_keys WHERE name = $1", name
    )
    return dict(row) if row else None


async def revoke(conn: asyncpg.Connection, name: str) -> str:
    """Revoke in the database; returns the key's hash, for `announce_revoked`."""
    digest = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING key_hash", name
    )
    if digest is None:
        exists = await conn.fetchval("SELECT 1 FROM api_keys WHERE name = $1", name)
        raise UoomError(f"key '{name}' is revoked already" if exists else f"no key named '{name}'")
    return str(digest)


async def announce_revoked(redis: aioredis.Redis, digest: str) -> None:
    """Tell every API process now (pub/sub), and one that is not listening when it subscribes
    again (the last day's revocations are kept), so none waits for its key cache to renew."""
    now = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(REVOKED_CHANNEL, {digest: now})
        pipe.zremrangebyscore(REVOKED_CHANNEL, "-inf", now - ANNOUNCED_FOR_SECONDS)
        pipe.publish(REVOKED_CHANNEL, digest)
        await pipe.execute()


async def recently_revoked(redis: aioredis.Redis) -> list[str]:
    since = time.time() - ANNOUNCED_FOR_SECONDS
    found = await redis.zrangebyscore(REVOKED_CHANNEL, since, "+inf")
    return [d.decode() if isinstance(d, bytes) else str(d) for d in found]


async def lookup(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, name, revoked_at FROM api_keys WHERE key_hash = $1", hash_key(key))
