"""API keys (`Authorization: Bearer` or `X-API-Key`) and the per-key rate limit.

Known keys are answered from a cache: past half a second an answer is renewed in the background
while it is still served, so the request path does not wait for PostgreSQL in the steady state,
and a key revoked in the database is refused within a second. `uoom keys revoke` also announces
the key through Redis, and every API process refuses it at once, whatever PostgreSQL is doing.
While PostgreSQL cannot renew a cached answer it stands, for STALE_SECONDS at most (a revocation
whose announcement was lost takes effect by then: 503 until PostgreSQL answers again).

Keys not in the cache cannot tie up the pool: a key found unknown is remembered for a while
(on its own, so a flood of unknown keys never evicts a known one), at most LOOKUP_CONCURRENCY
lookups of keys not in the cache run at once with LOOKUP_WAITING more waiting (beyond that: a quick
503), and an address that presented FAILURES_PER_ADDRESS unknown keys gets 429 without a lookup,
then one more lookup every FAILURE_WINDOW_SECONDS / FAILURES_PER_ADDRESS (a leaky bucket: clients
behind the same address as a flood wait, they are not shut out for a fixed time). The rate limit
(see ratelimit.py) is shared through Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiolimiter import AsyncLimiter
from cachetools import LRUCache, TTLCache
from fastapi import Request
from prometheus_client import Counter

from daemons.api.deadline import within
from daemons.api.problems import UNAVAILABLE, Problem
from daemons.api.ratelimit import SharedRateLimiter
from uoom import apikeys

log = logging.getLogger("uoom.api.auth")
KEY_CACHE_SECONDS = 1.0
RENEW_AFTER_SECONDS = 0.5
STALE_SECONDS = 10.0  # a cached answer that PostgreSQL cannot renew is served this long at most
LOOKUP_TIMEOUT_SECONDS = 0.25  # normally < 1 ms; it comes out of the request timeout
LOOKUP_CONCURRENCY = 2  # lookups of keys not in the cache at once: the pool keeps the rest
LOOKUP_WAITING = 100  # lookups waiting for one of those; more: 503 at once
UNKNOWN_CACHE_SECONDS = 2.0
FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW_SECONDS = 10.0
ANNOUNCED_REVOCATION_SECONDS = 0.5  # stated bound from `uoom keys revoke` to 403 (a Redis hop)
RESUBSCRIBE_SECONDS = 1.0
BEARER = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class _Known:
    at: float  # when PostgreSQL (or an announcement) said so, monotonic
    key_id: str
    revoked: bool


class Authorizer:
    def __init__(self, pool: asyncpg.Pool, limiter: SharedRateLimiter, registry: Any) -> None:
        self.pool, self.limiter, self.redis = pool, limiter, limiter.redis
        self._known: LRUCache[str, _Known] = LRUCache(maxsize=100_000)
        self._unknown: TTLCache[str, bool] = TTLCache(maxsize=50_000, ttl=UNKNOWN_CACHE_SECONDS)
        # a leaky bucket per address: FAILURES_PER_ADDRESS at once, then one per WINDOW / FAILURES
        self._failures: TTLCache[str, AsyncLimiter] = TTLCache(maxsize=50_000, ttl=FAILURE_WINDOW_SECONDS)
        self._fetching: dict[str, asyncio.Task[_Known | None]] = {}  # one lookup per key at a time
        self._lookups = asyncio.Semaphore(LOOKUP_CONCURRENCY)
        self._waiting = 0
        self._listener: asyncio.Task[None] | None = None
        self.limited = Counter("rate_limited", "Requests refused with 429", registry=registry)
        self.shed = Counter("auth_shed", "Unknown-key requests refused before a lookup (429 or 503)",
                            registry=registry)  # fmt: skip

    async def __call__(self, request: Request) -> str:
        key = _presented_key(request)
        if not key:
            raise Problem(401, "Unauthorized", "send an API key: Authorization: Bearer <key> or X-API-Key", BEARER)
        known = await self._lookup(apikeys.hash_key(key), request.client.host if request.client else "")
        if known.revoked:
            raise Problem(403, "Forbidden", "this API key was revoked")
        if not await self.limiter.allow(known.key_id):
            self.limited.inc()
            raise Problem(429, "Too many requests", f"more than {self.limiter.limit} requests/s for this key",
                          {"Retry-After": "1"})  # fmt: skip
        return known.key_id

    async def _lookup(self, digest: str, address: str) -> _Known:
        known = self._known.get(digest)
        if known is not None:
            age = time.monotonic() - known.at
            if age < KEY_CACHE_SECONDS:
                if age >= RENEW_AFTER_SECONDS:
                    self._fetch(digest)  # in the background; the cached answer serves meanwhile
                return known
            try:
                found = await asyncio.shield(self._fetch(digest))
            except UNAVAILABLE:
                if known.revoked or age < STALE_SECONDS:  # a revocation stands for good
                    return known
                raise
            if found is not None:
                return found
        elif digest not in self._unknown:
            found = await self._look_up_new(digest, address)
            if found is not None:
                return found
        await self._failed(address)
        raise Problem(401, "Unauthorized", "unknown API key", BEARER)

    async def _look_up_new(self, digest: str, address: str) -> _Known | None:
        """A key not in either cache: bounded, so a flood of them leaves the pool to real work."""
        failures = self._failures.get(address)
        if failures is not None and not failures.has_capacity():
            self.shed.inc()
            raise Problem(429, "Too many requests", "too many unknown API keys from this address; retry later",
                          {"Retry-After": "1"})  # fmt: skip
        if self._waiting >= LOOKUP_WAITING and digest not in self._fetching:
            self.shed.inc()
            raise Problem(503, "Service unavailable", "too many API keys to check at once; retry later",
                          {"Retry-After": "1"})  # fmt: skip
        self._waiting += 1
        try:
            return await asyncio.shield(self._fetch(digest, bounded=True))
        finally:
            self._waiting -= 1

    async def _failed(self, address: str) -> None:
        failures = self._failures.get(address)
        if failures is None:
            failures = self._failures[address] = AsyncLimiter(FAILURES_PER_ADDRESS, FAILURE_WINDOW_SECONDS)
        if failures.has_capacity():  # (then acquire does not wait)
            await failures.acquire()

    def _fetch(self, digest: str, *, bounded: bool = False) -> asyncio.Task[_Known | None]:
        task = self._fetching.get(digest)
        if task is None:
            task = self._fetching[digest] = asyncio.create_task(self._select(digest, bounded))
            task.add_done_callback(lambda done: self._fetched(digest, done))
        return task

    def _fetched(self, digest: str, task: asyncio.Task[_Known | None]) -> None:
        self._fetching.pop(digest, None)
        if not task.cancelled() and task.exception() is not None:  # retrieved: a renewal has no awaiter
            log.debug("an API key lookup failed: %s", type(task.exception()).__name__)

    async def _select(self, digest: str, bounded: bool) -> _Known | None:
        started = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            if bounded:  # (a cancelled acquire gives its turn on, so a timeout here leaks nothing)
                async with asyncio.timeout(LOOKUP_TIMEOUT_SECONDS):
                    await self._lookups.acquire()
                stack.callback(self._lookups.release)
            left = LOOKUP_TIMEOUT_SECONDS - (time.monotonic() - started)
            row = await within(
                max(left, 0.001),
                self.pool.fetchrow("SELECT id, revoked_at FROM api_keys WHERE key_hash = $1", digest),
            )
        if row is None:
            self._known.pop(digest, None)
            self._unknown[digest] = True
            return None
        known = self._known.get(digest)
        if known is not None and known.revoked:  # an announcement may be ahead of this answer
            return known
        known = self._known[digest] = _Known(started, str(row["id"]), row["revoked_at"] is not None)
        return known

    def revoked(self, digest: str) -> None:
        """An announced revocation: refused from now on, whether cached or not."""
        known = self._known.get(digest)
        self._known[digest] = _Known(time.monotonic(), known.key_id if known else "", True)
        self._unknown.pop(digest, None)

    async def start(self) -> None:
        """Listen for revocations announced through Redis (apikeys.announce_revoked)."""
        self._listener = asyncio.create_task(self._listen())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def _listen(self) -> None:
        down = False
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(apikeys.REVOKED_CHANNEL)
                    for digest in await apikeys.recently_revoked(self.redis):  # announced while away
                        self.revoked(digest)
                    if down:
                        log.info("listening for API key revocations again")
                    down = False
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is not None and message["type"] == "message":
                            self.revoked(message["data"].decode())
            except (aioredis.RedisError, OSError, TimeoutError) as exc:
                if not down:
                    log.warning("not hearing API key revocations (%s): they take effect within %.0f s "
                                "meanwhile", type(exc).__name__, KEY_CACHE_SECONDS)  # fmt: skip
                down = True
                await asyncio.sleep(RESUBSCRIBE_SECONDS)


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None
