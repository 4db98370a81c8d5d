"""API keys (`Authorization: Bearer` or `X-API-Key`) and the per-key rate limit.

Lookups are cached for one second, so a revoked key is refused within a second; past half of
that an answer is renewed in the background while it is still served, so the request path does
not wait for PostgreSQL in the steady state. While PostgreSQL is unavailable the last answer for
a key stands, so cached reads keep being served. The rate limit
(see ratelimit.py) is shared through Redis; when Redis is down each worker enforces it alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
from fastapi import Request
from prometheus_client import Counter

from daemons.api.deadline import within
from daemons.api.problems import UNAVAILABLE, Problem
from daemons.api.ratelimit import SharedRateLimiter
from uoom import apikeys

log = logging.getLogger("uoom.api.auth")
KEY_CACHE_SECONDS = 1.0
RENEW_AFTER_SECONDS = 0.5
LOOKUP_TIMEOUT_SECONDS = 0.25  # normally < 1 ms; it comes out of the request timeout


class Authorizer:
    def __init__(self, pool: asyncpg.Pool, limiter: SharedRateLimiter, registry: Any) -> None:
        self.pool, self.limiter = pool, limiter
        self._cache: dict[str, tuple[float, str | None, bool]] = {}
        self._renewing: dict[str, asyncio.Task[None]] = {}  # one background renewal per key at a time
        self.limited = Counter("rate_limited", "Requests refused with 429", registry=registry)

    async def __call__(self, request: Request) -> str:
        key = _presented_key(request)
        if not key:
            raise Problem(401, "Unauthorized", "send an API key: Authorization: Bearer <key> or X-API-Key",
                          {"WWW-Authenticate": "Bearer"})  # fmt: skip
        key_id, revoked = await self._lookup(key)
        if key_id is None:
            raise Problem(401, "Unauthorized", "unknown API key", {"WWW-Authenticate": "Bearer"})
        if revoked:
            raise Problem(403, "Forbidden", "this API key was revoked")
        self._limit(key_id)
        return key_id

    async def _lookup(self, key: str) -> tuple[str | None, bool]:
        digest = apikeys.hash_key(key)
        cached = self._cache.get(digest)
        age = time.monotonic() - cached[0] if cached else KEY_CACHE_SECONDS
        if cached and age < KEY_CACHE_SECONDS:
            if age >= RENEW_AFTER_SECONDS and digest not in self._renewing:
                task = asyncio.create_task(self._renew(digest))
                self._renewing[digest] = task
                task.add_done_callback(lambda _: self._renewing.pop(digest, None))
            return cached[1], cached[2]
        try:
            return await self._fetch(digest)
        except UNAVAILABLE:
            if cached:  # PostgreSQL unavailable: the last answer for this key stands meanwhile
                return cached[1], cached[2]
            raise

    async def _renew(self, digest: str) -> None:
        try:
            await self._fetch(digest)
        except Exception as exc:  # noqa: BLE001 - the entry ages out; the next request looks up itself
            log.debug("renewing an API key lookup failed: %s", type(exc).__name__)

    async def _fetch(self, digest: str) -> tuple[str | None, bool]:
        started = time.monotonic()
        row = await within(
            LOOKUP_TIMEOUT_SECONDS,
            self.pool.fetchrow("SELECT id, revoked_at FROM api_keys WHERE key_hash = $1", digest),
        )
        entry = (started, str(row["id"]) if row else None, bool(row and row["revoked_at"]))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = entry
        return entry[1], entry[2]

    def _limit(self, key_id: str) -> None:
        if not self.limiter.allow(key_id):
            self.limited.inc()
            raise Problem(429, "Too many requests", f"more than {self.limiter.limit} requests/s for this key",
                          {"Retry-After": "1"})  # fmt: skip


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None
