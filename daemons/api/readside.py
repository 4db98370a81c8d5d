"""Status reads: in-process cache -> DAX (if configured) or DynamoDB -> PostgreSQL -> backfill.

The in-process cache holds snapshots this worker wrote or read. Writes through this worker update
it at once; changes made elsewhere arrive through the order events (cachefeed.py); an entry is
trusted for at most `status_cache_ttl_ms`, the bound on staleness when events stop flowing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any

import asyncpg
from prometheus_client import Counter, Histogram

from uoom.config import Settings
from uoom.stores import orders, readmodel

log = logging.getLogger("uoom.api.read")


class SnapshotCache:
    """Each entry lives a random 50-100 % of the TTL, so entries loaded together do not all expire
    together; past 75 % of its life a read asks for a refresh, which runs in the background."""

    def __init__(self, ttl_ms: int, size: int) -> None:
        self.ttl = ttl_ms / 1000
        self.size = size
        self._entries: OrderedDict[str, tuple[float, float, dict[str, Any]]] = OrderedDict()

    def lookup(self, order_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(snapshot or None, whether it is due for a refresh)."""
        entry = self._entries.get(order_id)
        if entry is None:
            return None, False
        stored_at, lifetime, snapshot = entry
        age = time.monotonic() - stored_at
        if age > lifetime:
            return None, False
        return snapshot, age > 0.75 * lifetime

    def get(self, order_id: str) -> dict[str, Any] | None:
        return self.lookup(order_id)[0]

    def refresh(self, snapshot: dict[str, Any]) -> bool:
        """Replace a snapshot this cache holds with a newer one; orders it does not hold are left out."""
        if snapshot["id"] not in self._entries:
            return False
        self.put(snapshot)
        return True

    def put(self, snapshot: dict[str, Any]) -> None:
        if self.size == 0 or self.ttl == 0:
            return
        key = snapshot["id"]
        current = self._entries.get(key)
        if current is not None and current[2]["version"] > snapshot["version"]:
            return  # never replace a newer snapshot with an older one
        self._entries[key] = (time.monotonic(), self.ttl * random.uniform(0.5, 1.0), snapshot)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class ReadSide:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, dynamodb: Any, dax: Any,
                 registry: Any) -> None:  # fmt: skip
        self.settings, self.pool, self.dynamodb, self.dax = settings, pool, dynamodb, dax
        self.cache = SnapshotCache(settings.status_cache_ttl_ms, settings.status_cache_size)
        self.sources: dict[str, int] = {"cache": 0, "dynamodb": 0, "dax": 0, "postgres": 0, "missing": 0}
        self.read_latency = Histogram(
            "dynamodb_read_latency_ms", "Read-model read latency (DynamoDB or DAX), ms",
            buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 35, 50, 100, 250, 1000), registry=registry,
        )  # fmt: skip
        self.reads = Counter("read_model_reads", "Status reads by source", ["source"], registry=registry)
        self._tasks: set[asyncio.Task[None]] = set()
        self._refreshing: set[str] = set()

    def hit_rate(self) -> float | None:
        hits = self.sources["cache"] + self.sources["dynamodb"] + self.sources["dax"]
        total = hits + self.sources["postgres"]
        return hits / total if total else None

    def _count(self, source: str) -> None:
        self.sources[source] += 1
        self.reads.labels(source).inc()

    async def get(self, order_id: uuid.UUID) -> tuple[dict[str, Any] | None, str]:
        key = str(order_id)
        cached, due = self.cache.lookup(key)
        if cached is not None:
            if due and key not in self._refreshing:  # one refresh per order at a time
                self._refreshing.add(key)
                self._background(self._refresh(order_id))
            self._count("cache")
            return cached, "cache"
        return await self._load(order_id)

    async def _refresh(self, order_id: uuid.UUID) -> None:
        try:
            await self._load(order_id, count=False)
        except Exception as exc:  # noqa: BLE001 - the entry simply expires; the next read loads it
            log.debug("refresh of %s failed: %s", order_id, exc)
        finally:
            self._refreshing.discard(str(order_id))

    async def _load(self, order_id: uuid.UUID, count: bool = True) -> tuple[dict[str, Any] | None, str]:
        """Read model first, PostgreSQL on a miss (then backfill); the answer goes into the cache."""
        key = str(order_id)
        snapshot, source = await self._read_model(key)
        if snapshot is None:
            row = await orders.fetch(self.pool, order_id)
            if row is None:
                if count:
                    self._count("missing")
                return None, "missing"
            snapshot, source = orders.snapshot(row), "postgres"
            self.backfill(snapshot)
        if count:
            self._count(source)
        self.cache.put(snapshot)
        return snapshot, source

    async def _read_model(self, key: str) -> tuple[dict[str, Any] | None, str]:
        started = time.perf_counter()
        try:
            if self.dax is not None:
                item, source = await self._dax_get(key), "dax"
            else:
                response = await self.dynamodb.get_item(
                    TableName=self.settings.dynamodb_table, Key={"orderId": {"S": key}}
                )
                item, source = response.get("Item"), "dynamodb"
        except Exception as exc:  # noqa: BLE001 - the read side is optional: PostgreSQL answers
            log.warning("read model unavailable (%s); reading PostgreSQL", type(exc).__name__)
            return None, "postgres"
        finally:
            self.read_latency.observe((time.perf_counter() - started) * 1000)
        return (readmodel.from_item(item) if item else None), source

    async def _dax_get(self, key: str) -> dict[str, Any] | None:
        # amazon-dax-client is synchronous: keep it off the event loop.
        def get() -> dict[str, Any] | None:
            response = self.dax.get_item(TableName=self.settings.dynamodb_table, Key={"orderId": {"S": key}})
            item: dict[str, Any] | None = response.get("Item")
            return item

        return await asyncio.to_thread(get)

    def backfill(self, snapshot: dict[str, Any]) -> None:
        """Write the snapshot to the read model in the background; losing it costs only a miss."""
        self._background(self._write(snapshot))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def _write(self, snapshot: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(2):
                await readmodel.put_if_newer(self.dynamodb, self.settings, snapshot)
        except Exception as exc:  # noqa: BLE001 - losing a backfill costs one more miss
            log.warning("read-model write of %s failed: %s", snapshot["id"], type(exc).__name__)

    async def write_through(self, snapshot: dict[str, Any]) -> bool:
        """After a commit: cache at once, then the read model (bounded wait). Never raises."""
        self.cache.put(snapshot)
        try:
            async with asyncio.timeout(0.5):
                return await readmodel.put_if_newer(self.dynamodb, self.settings, snapshot)
        except Exception as exc:  # noqa: BLE001 - reads fall back to PostgreSQL meanwhile
            log.warning("write-through of %s failed: %s", snapshot["id"], type(exc).__name__)
            return False

    async def batch(self, ids: list[uuid.UUID]) -> tuple[list[tuple[dict[str, Any], str]], list[uuid.UUID]]:
        """BatchGetItem (retrying UnprocessedKeys), PostgreSQL for the misses."""
        found: dict[str, tuple[dict[str, Any], str]] = {}
        wanted = list(dict.fromkeys(str(i) for i in ids))
        try:
            keys: list[dict[str, Any]] = [{"orderId": {"S": k}} for k in wanted]
            for attempt in range(5):
                if not keys:
                    break
                response = await self.dynamodb.batch_get_item(
                    RequestItems={self.settings.dynamodb_table: {"Keys": keys}}
                )
                for item in response.get("Responses", {}).get(self.settings.dynamodb_table, []):
                    snapshot = readmodel.from_item(item)
                    if snapshot:
                        found[snapshot["id"]] = (snapshot, "dynamodb")
                keys = response.get("UnprocessedKeys", {}).get(self.settings.dynamodb_table, {}).get("Keys", [])
                if keys:
                    await asyncio.sleep(0.01 * 2**attempt)
        except Exception as exc:  # noqa: BLE001 - PostgreSQL answers for all of them
            log.warning("batch read from the read model failed: %s", type(exc).__name__)
        misses = [uuid.UUID(k) for k in wanted if k not in found]
        if misses:
            for row in await orders.fetch_many(self.pool, misses):
                snapshot = orders.snapshot(row)
                found[snapshot["id"]] = (snapshot, "postgres")
                self.backfill(snapshot)
        not_found = [uuid.UUID(k) for k in wanted if k not in found]
        return [found[k] for k in wanted if k in found], not_found
