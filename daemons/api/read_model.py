"""Status reads: in-process cache -> DAX (if configured) or DynamoDB -> PostgreSQL -> backfill.

The in-process cache (statuscache.py) holds snapshots this worker wrote or read. Writes through
this worker update it at once; changes made elsewhere arrive through the order events
(cache_updater.py); an entry is trusted for at most `status_cache_ttl_ms`, the bound on staleness when
events stop flowing. Entries near the end of their life are refreshed in the background, many
per BatchGetItem: botocore costs a few ms of event-loop CPU per call, whatever its size, and
every request arriving meanwhile waits for it.

Every read-model call has its own deadline (`read_model_timeout_ms`), well inside the request's:
a DynamoDB that hangs instead of refusing costs a read that deadline, then PostgreSQL answers.
After a call times out or cannot connect, the read model is skipped for `PAUSE_S` (PostgreSQL
answers at once), so a hung store does not cost every request its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Coroutine, Iterator
from datetime import datetime
from typing import Any

import asyncpg
from botocore.exceptions import ClientError
from prometheus_client import Counter, Histogram

from daemons.api.statuscache import SnapshotCache
from daemons.kit.metrics import by_label
from uoom.config import Settings
from uoom.domain.orders import Order
from uoom.stores import orders, readmodel
from uoom.stores.snapshots import to_snapshot

log = logging.getLogger("uoom.api.read")

BATCH_LIMIT = 100  # BatchGetItem's own limit
# How long due entries gather before one batched refresh: each call stalls the event loop for a
# few ms whatever its size, so fewer is better; 10 % of the TTL leaves time before they expire
# (an entry comes due with at least 12.5 % of the TTL left: 25 % of a life of 50-100 %).
REFRESH_GATHER_MAX_S = 1.0
READ_SOURCES = ("cache", "dynamodb", "dax", "postgres", "missing")
WRITE_OUTCOMES = ("written", "superseded", "failed", "dropped")
MAX_PENDING_WRITES = 2_000  # beyond this the read model is not keeping up: drop, the projector repairs
PAUSE_S = 1.0  # after a timeout or a refused connection, calls skip the read model this long
Page = tuple[list[tuple[dict[str, Any], str]], dict[str, Any] | None]  # (snapshot, source)s, next start key


class ReadModelPaused(Exception):
    """The read model failed a moment ago: not asked again until the pause ends."""


class CachedReadModel:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, dynamodb: Any, dax: Any,
                 registry: Any) -> None:  # fmt: skip
        self.settings, self.pool, self.dynamodb, self.dax = settings, pool, dynamodb, dax
        self.table = settings.dynamodb_table
        self.timeout_s = settings.read_model_timeout_ms / 1000
        self._paused_until = 0.0
        self.cache = SnapshotCache(settings.status_cache_ttl_ms, settings.status_cache_size)
        self.read_latency = Histogram(
            "dynamodb_read_latency_ms", "Read-model read latency (DynamoDB or DAX), ms",
            buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 35, 50, 100, 250, 1000), registry=registry,
        )  # fmt: skip
        self.reads = Counter("read_model_reads", "Status reads by source", ["source"], registry=registry)
        self.writes = Counter("read_model_writes", "Read-model writes by outcome", ["outcome"], registry=registry)
        for source in READ_SOURCES:
            self.reads.labels(source)
        for outcome in WRITE_OUTCOMES:
            self.writes.labels(outcome)
        self.refreshes = Counter("status_cache_refreshes", "Cache entries refreshed from the read model",
                                 registry=registry)  # fmt: skip
        self._tasks: set[asyncio.Task[Any]] = set()
        self._due: set[str] = set()  # cached orders waiting for the next batched refresh
        self._refresher: asyncio.Task[None] | None = None

    @property
    def sources(self) -> dict[str, int]:
        """Status reads by where they were answered (the counter's own values)."""
        return by_label(self.reads)

    @property
    def write_outcomes(self) -> dict[str, int]:
        return by_label(self.writes)

    def hit_rate(self) -> float | None:
        sources = self.sources
        hits = sources["cache"] + sources["dynamodb"] + sources["dax"]
        total = hits + sources["postgres"]
        return hits / total if total else None

    def _count(self, source: str) -> None:
        self.reads.labels(source).inc()

    def _wrote(self, outcome: str) -> None:
        self.writes.labels(outcome).inc()

    def cached(self, order_id: uuid.UUID) -> dict[str, Any] | None:
        """A cache hit, without awaiting anything (the hot path), or None."""
        key = str(order_id)
        snapshot, due = self.cache.lookup(key)
        if snapshot is None:
            return None
        if due:
            self._due.add(key)
            if self._refresher is None or self._refresher.done():
                self._refresher = self._background(self._refresh_due())
        self._count("cache")
        return snapshot

    async def get(self, order_id: uuid.UUID) -> tuple[dict[str, Any] | None, str]:
        snapshot = self.cached(order_id)
        if snapshot is not None:
            return snapshot, "cache"
        return await self.load(order_id)

    async def _refresh_due(self) -> None:
        await asyncio.sleep(min(REFRESH_GATHER_MAX_S, self.cache.ttl * 0.1))
        while self._due:
            keys = list(itertools.islice(self._due, BATCH_LIMIT))
            self._due.difference_update(keys)
            try:
                found = await self._read_model_batch(keys)
                if absent := [k for k in keys if k not in found]:
                    found |= await self._from_postgres(absent)
            except Exception as exc:  # noqa: BLE001 - the entries simply expire; the next read loads them
                log.debug("refresh of %d cached orders failed: %s", len(keys), exc)
                continue
            for snapshot in found.values():
                self.cache.put(snapshot)  # same or newer version: a new lease of life
            self.refreshes.inc(len(found))

    async def _from_postgres(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Cached orders the read model does not hold (the projector behind or stopped): one query
        for them all, and their items written (version-guarded, up to 100 to a transaction).
        Left to expire, each would have become a read's miss, all of them about together, on
        the request path: a PostgreSQL read and a write each (status P99 near a second at 500/s)."""
        found = {str(o.id): to_snapshot(o) for o in await orders.fetch_many(self.pool, [uuid.UUID(k) for k in keys])}
        if found and len(self._tasks) < MAX_PENDING_WRITES:
            self._background(self._write_all(list(found.values())))
        return found

    async def _write_all(self, snapshots: list[dict[str, Any]]) -> None:
        try:
            async with self._bounded(2.0):
                outcome = await readmodel.put_all_if_newer(self.dynamodb, self.settings, snapshots)
        except Exception as exc:  # noqa: BLE001 - reads fall back to PostgreSQL; the projector repairs
            _unavailable(exc, f"read-model writes of {len(snapshots)} orders failed: %s")
            self._wrote("failed")
            return
        for result in outcome.values():
            self._wrote({"applied": "written", "stale": "superseded"}.get(result, "failed"))

    async def load(self, order_id: uuid.UUID) -> tuple[dict[str, Any] | None, str]:
        """Read model first, PostgreSQL on a miss (then backfill); the answer goes into the cache."""
        key = str(order_id)
        snapshot, source = await self._read_model(key)
        if snapshot is None:
            order = await orders.fetch(self.pool, order_id)
            if order is None:
                self._count("missing")
                return None, "missing"
            snapshot, source = to_snapshot(order), "postgres"
            self.backfill(snapshot)
        self._count(source)
        self.cache.put(snapshot)
        return snapshot, source

    async def _read_model(self, key: str) -> tuple[dict[str, Any] | None, str]:
        source = "dax" if self.dax is not None else "dynamodb"
        try:
            with self._timed():
                response = await self._call("get_item", TableName=self.table, Key={"orderId": {"S": key}})
        except Exception as exc:  # noqa: BLE001 - the read side is optional: PostgreSQL answers
            _unavailable(exc, "read model unavailable (%s); reading PostgreSQL")
            return None, "postgres"
        item = response.get("Item")
        return (readmodel.from_item(item) if item else None), source

    async def _read_model_batch(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """BatchGetItem for up to 100 ids, retrying UnprocessedKeys; raises if the read model is down."""
        found: dict[str, dict[str, Any]] = {}
        wanted: list[dict[str, Any]] = [{"orderId": {"S": k}} for k in keys]
        for attempt in range(5):
            if not wanted:
                break
            if attempt:
                await asyncio.sleep(0.01 * 2**attempt)
            with self._timed():
                response = await self._call("batch_get_item", RequestItems={self.table: {"Keys": wanted}})
            for item in response.get("Responses", {}).get(self.table, []):
                snapshot = readmodel.from_item(item)
                if snapshot:
                    found[snapshot["id"]] = snapshot
            wanted = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
        return found

    async def _call(self, operation: str, *, direct: bool = False, **kwargs: Any) -> dict[str, Any]:
        """A read-model read through DAX when configured (and not `direct`), else DynamoDB, within
        the read model's deadline."""
        async with self._bounded():
            if self.dax is None or direct:
                response: dict[str, Any] = await getattr(self.dynamodb, operation)(**kwargs)
                return response
            # amazon-dax-client is synchronous: keep it off the event loop.
            return await asyncio.to_thread(getattr(self.dax, operation), **kwargs)  # type: ignore[no-any-return]

    @contextlib.asynccontextmanager
    async def _bounded(self, seconds: float | None = None) -> Any:
        """The read model's deadline; a timeout or a connection failure pauses it (a ClientError is
        an answer: the store is there)."""
        if time.monotonic() < self._paused_until:
            raise ReadModelPaused()
        try:
            async with asyncio.timeout(self.timeout_s if seconds is None else seconds):
                yield
        except ClientError:
            raise
        except Exception:
            self._paused_until = time.monotonic() + PAUSE_S
            raise

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:  # in ms: Histogram.time() would observe seconds
            self.read_latency.observe((time.perf_counter() - started) * 1000)

    def backfill(self, snapshot: dict[str, Any]) -> None:
        """Write the snapshot to the read model in the background; losing it costs only a miss."""
        if len(self._tasks) >= MAX_PENDING_WRITES:
            self._wrote("dropped")
            return
        self._background(self._write(snapshot))

    def created(self, order: Order) -> None:
        """After a create commits: into the cache, and nothing more. The projector writes the item
        from the `order.created` event (one writer: a second write from here cost DynamoDB and the
        API a PutItem each per order); a new order has no older version anywhere to be confused
        with, so until its item lands other workers miss and read PostgreSQL."""
        self.cache.put(to_snapshot(order))

    def changed_aside(self, order: Order) -> None:
        """An order another request changed (a join re-prices its trip's first rider): into the
        cache, and nothing more. Its own event (`order.trip_joined`) carries the change to the
        projector, which writes the item; the request's caller did not read that order, so no
        read of theirs waits on it, and a PutItem on the request path cost every join ~1 ms of
        this worker's CPU (bench/reports/platform-trips.md)."""
        self.cache.put(to_snapshot(order))

    async def write_through(self, order: Order) -> bool:
        """After a status change commits: cache at once, then the read model (bounded wait), so that
        a worker reading the item after our response sees the new version. Never raises."""
        snapshot = to_snapshot(order)
        self.cache.put(snapshot)
        return await self._write(snapshot, within_s=0.5)

    async def _write(self, snapshot: dict[str, Any], within_s: float = 2.0) -> bool:
        try:
            async with self._bounded(within_s):
                written = await readmodel.put_if_newer(self.dynamodb, self.settings, snapshot)
        except Exception as exc:  # noqa: BLE001 - reads fall back to PostgreSQL; the projector repairs
            _unavailable(exc, f"read-model write of {snapshot['id']} failed: %s")
            self._wrote("failed")
            return False
        self._wrote("written" if written else "superseded")
        return written

    def pending_writes(self) -> int:
        return len(self._tasks)

    def _background(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Let pending read-model writes finish (bounded) before the clients close."""
        self._due.clear()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)

    async def batch(self, ids: list[uuid.UUID]) -> tuple[list[tuple[dict[str, Any], str]], list[uuid.UUID]]:
        """BatchGetItem (retrying UnprocessedKeys), PostgreSQL for the misses."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        source = "dax" if self.dax is not None else "dynamodb"
        found: dict[str, tuple[dict[str, Any], str]] = {}
        try:
            found = {k: (s, source) for k, s in (await self._read_model_batch(wanted)).items()}
        except Exception as exc:  # noqa: BLE001 - PostgreSQL answers for all of them
            _unavailable(exc, "batch read from the read model failed (%s); reading PostgreSQL")
        misses = [uuid.UUID(k) for k in wanted if k not in found]
        if misses:
            for order in await orders.fetch_many(self.pool, misses):
                snapshot = to_snapshot(order)
                found[snapshot["id"]] = (snapshot, "postgres")
                self.backfill(snapshot)
        not_found = [uuid.UUID(k) for k in wanted if k not in found]
        return [found[k] for k in wanted if k in found], not_found

    async def customer_page(self, customer_id: uuid.UUID, limit: int, start: dict[str, Any] | None) -> Page:
        """One page of a customer's orders, newest change first: the read model's
        CustomerStatusIndex, or PostgreSQL in the same order (and the same cursor) when it fails."""
        query: dict[str, Any] = {
            "TableName": self.table, "IndexName": "CustomerStatusIndex",
            "KeyConditionExpression": "customerId = :c",
            "ExpressionAttributeValues": {":c": {"S": str(customer_id)}},
            "ScanIndexForward": False, "Limit": limit,
        }  # fmt: skip
        if start:
            query["ExclusiveStartKey"] = start
        try:  # not through DAX: its query cache would add a staleness of its own
            page = await self._call("query", direct=True, **query)
        except Exception as exc:  # noqa: BLE001 - PostgreSQL has every order
            _unavailable(exc, "customer listing from the read model failed (%s); reading PostgreSQL")
            return await self._customer_page_from_postgres(customer_id, limit, start)
        return await self.listed(page.get("Items", [])), page.get("LastEvaluatedKey")

    async def _customer_page_from_postgres(self, customer_id: uuid.UUID, limit: int,
                                           start: dict[str, Any] | None) -> Page:  # fmt: skip
        after = None
        if start:
            after = (datetime.fromisoformat(start["updatedAt"]["S"]), uuid.UUID(start["orderId"]["S"]))
        found = await orders.for_customer(self.pool, customer_id, limit + 1, after)
        snapshots = [to_snapshot(order) for order in found[:limit]]
        last = None
        if len(found) > limit:  # the key DynamoDB would return: the same cursor works on either side
            s = snapshots[-1]
            last = {"orderId": {"S": s["id"]}, "customerId": {"S": s["customerId"]}, "updatedAt": {"S": s["updatedAt"]}}
        return [(s, "postgres") for s in snapshots], last

    async def listed(self, items: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        """The snapshots of a query's items, in their order. An expired item (past its TTL, not yet
        deleted) is read from PostgreSQL and refreshed, as a missing one is by the other reads."""
        snapshots = [readmodel.from_item(item) for item in items]
        expired = [uuid.UUID(item["orderId"]["S"]) for item, s in zip(items, snapshots, strict=True) if s is None]
        fresh: dict[str, dict[str, Any]] = {}
        if expired:
            for order in await orders.fetch_many(self.pool, expired):
                fresh[str(order.id)] = snapshot = to_snapshot(order)
                self.backfill(snapshot)
        answered = [(s, "dynamodb") if s else (fresh.get(i["orderId"]["S"]), "postgres")
                    for i, s in zip(items, snapshots, strict=True)]  # fmt: skip
        return [(s, source) for s, source in answered if s is not None]


def _unavailable(exc: Exception, message: str) -> None:
    """Logged once per failure, not once per request skipped during the pause that follows it."""
    log.log(logging.DEBUG if isinstance(exc, ReadModelPaused) else logging.WARNING, message, type(exc).__name__)
