"""API keys: random 256-bit tokens, stored only as their sha256 (a slow hash adds nothing at
that entropy), shown once at creation."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

import asyncpg

from uoom.errors import UoomError, UsageError

PREFIX = "uoom_"


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


async def revoke(conn: asyncpg.Connection, name: str) -> None:
    status = await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name)
    if status == "UPDATE 0":
        exists = await conn.fetchval("SELECT 1 FROM api_keys WHERE name = $1", name)
        raise UoomError(f"key '{name}' is revoked already" if exists else f"no key named '{name}'")


async def lookup(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, name, revoked_at FROM api_keys WHERE key_hash = $1", hash_key(key))
