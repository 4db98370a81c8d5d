"""Read-side logic without services: the snapshot cache, and that reads go through DAX when a
DAX client is configured (a stand-in client: DAX has no local form)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from daemons.api.read_model import CachedReadModel
from daemons.api.statuscache import SnapshotCache
from uoom.config import Settings
from uoom.domain.orders import Address, Order, OrderStatus
from uoom.stores import readmodel


def snapshot(order_id: str, version: int, status: str = "PENDING") -> dict[str, Any]:
    return {
        "id": order_id,
        "customerId": "c",
        "status": status,
        "version": version,
        "updatedAt": "2026-11-25T10:00:00Z",
        "createdAt": "2026-11-25T10:00:00Z",
    }


def test_cache_never_replaces_a_newer_snapshot() -> None:
    cache = SnapshotCache(ttl_ms=60_000, size=10)
    cache.put(snapshot("a", 3, "PREPARING"))
    cache.put(snapshot("a", 2, "CONFIRMED"))
    assert cache.get("a")["status"] == "PREPARING"  # type: ignore[index]


def test_refresh_only_touches_orders_the_cache_holds() -> None:
    cache = SnapshotCache(ttl_ms=60_000, size=10)
    assert not cache.refresh(snapshot("a", 1))
    assert cache.get("a") is None
    cache.put(snapshot("a", 1))
    assert cache.refresh(snapshot("a", 2, "CONFIRMED"))
    assert cache.get("a")["status"] == "CONFIRMED"  # type: ignore[index]


def test_entries_expire_after_the_ttl_and_the_size_is_bounded() -> None:
    cache = SnapshotCache(ttl_ms=50, size=2)
    for name in ("a", "b", "c"):
        cache.put(snapshot(name, 1))
    assert cache.get("a") is None  # evicted: oldest of three in a cache of two
    assert cache.get("c") is not None
    time.sleep(0.08)
    assert cache.get("c") is None


def new_order(order_id: str) -> Order:
    at = datetime(2026, 11, 25, 10, tzinfo=UTC)
    address = Address("s", "c", "p", 0.0, 0.0)
    return Order(uuid.UUID(order_id), uuid.uuid4(), uuid.uuid4(), OrderStatus.PENDING, (), address, None,
                 Decimal("0.00"), None, None, None, None, None, at, at, 1)  # fmt: skip


class StandInDax:
    """Answers GetItem like DAX does (the low-level item format), and records the calls."""

    def __init__(self, item: dict[str, Any]) -> None:
        self.item, self.calls = item, 0

    def get_item(self, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {"Item": self.item} if Key["orderId"]["S"] == self.item["orderId"]["S"] else {}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        ((table, wanted),) = RequestItems.items()
        found = [self.item for k in wanted["Keys"] if k["orderId"]["S"] == self.item["orderId"]["S"]]
        return {"Responses": {table: found}, "UnprocessedKeys": {}}


async def test_status_reads_go_through_dax_when_configured() -> None:
    order_id = str(uuid.uuid4())
    dax = StandInDax(readmodel.to_item(snapshot(order_id, 4, "READY_FOR_PICKUP"), ttl_hours=72))
    settings = Settings(_env_file=None, status_cache_ttl_ms=0)
    reads = CachedReadModel(settings, pool=None, dynamodb=None, dax=dax, registry=CollectorRegistry())
    found, source = await reads.get(uuid.UUID(order_id))
    assert (found["status"], source, dax.calls) == ("READY_FOR_PICKUP", "dax", 1)  # type: ignore[index]


def test_an_item_past_its_ttl_is_treated_as_absent() -> None:
    item = readmodel.to_item(snapshot("a", 1), ttl_hours=1, now=time.time() - 7200)
    assert readmodel.from_item(item) is None


def test_an_item_written_before_trips_reads_as_an_order_without_a_trip() -> None:
    item = readmodel.to_item(snapshot("a", 1), ttl_hours=1)
    assert "tripId" not in snapshot("a", 1)
    found = readmodel.from_item(item)
    assert found is not None and (found["tripId"], found["coRiderId"]) == (None, None)
    trip = {**snapshot("b", 2), "tripId": "t", "coRiderId": "c"}
    assert readmodel.from_item(readmodel.to_item(trip, ttl_hours=1)) == trip


class StandInDynamoDB:
    """Answers BatchGetItem from a dict of items, leaving some keys unprocessed the first time,
    as DynamoDB does under throttling; records the size of each call."""

    def __init__(self, table: str, items: dict[str, dict[str, Any]], unprocessed_first: int = 0) -> None:
        self.table, self.items, self.unprocessed_first = table, items, unprocessed_first
        self.calls: list[int] = []

    async def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        keys = RequestItems[self.table]["Keys"]
        self.calls.append(len(keys))
        held_back, keys = keys[: self.unprocessed_first], keys[self.unprocessed_first :]
        self.unprocessed_first = 0
        found = [self.items[k["orderId"]["S"]] for k in keys if k["orderId"]["S"] in self.items]
        unprocessed = {self.table: {"Keys": held_back}} if held_back else {}
        return {"Responses": {self.table: found}, "UnprocessedKeys": unprocessed}


async def test_entries_near_the_end_of_their_life_are_refreshed_together_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("daemons.api.statuscache.random.uniform", lambda low, high: high)  # lifetime = TTL
    settings = Settings(_env_file=None, status_cache_ttl_ms=1000)
    ids = [str(uuid.uuid4()) for _ in range(150)]
    newer = {i: readmodel.to_item(snapshot(i, 2, "CONFIRMED"), ttl_hours=72) for i in ids}
    dynamodb = StandInDynamoDB(settings.dynamodb_table, newer, unprocessed_first=10)
    reads = CachedReadModel(settings, pool=None, dynamodb=dynamodb, dax=None, registry=CollectorRegistry())
    for i in ids:
        reads.cache.put(snapshot(i, 1))
    await asyncio.sleep(0.8)  # past 75 % of the 1 s life: due, not expired
    for i in ids:
        found, source = await reads.get(uuid.UUID(i))
        assert (found["version"], source) == (1, "cache")  # type: ignore[index]
    await asyncio.sleep(0.4)  # the gathering window (100 ms), then the batches
    assert dynamodb.calls == [100, 10, 50]  # 100, the 10 it held back, the remaining 50
    assert all(reads.cache.get(i)["version"] == 2 for i in ids)  # type: ignore[index]
    assert reads.sources["cache"] == 150 and reads.sources["dynamodb"] == 0
    await reads.close()


class SlowDynamoDB:
    """PutItem that takes a while, as a loaded read model does."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.written = seconds, []  # type: ignore[var-annotated]

    async def put_item(self, **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(self.seconds)
        self.written.append(kwargs["Item"]["orderId"]["S"])
        return {}


async def test_a_new_order_is_cached_at_once_and_left_to_the_projector() -> None:
    dynamodb = SlowDynamoDB(0.3)
    reads = CachedReadModel(
        Settings(_env_file=None), pool=None, dynamodb=dynamodb, dax=None, registry=CollectorRegistry()
    )
    order_id = str(uuid.uuid4())
    reads.created(new_order(order_id))
    assert reads.cache.get(order_id) is not None
    assert reads.pending_writes() == 0  # one writer of new items: the projector
    await reads.close()
    assert dynamodb.written == [] and reads.write_outcomes["written"] == 0


async def test_batch_status_reads_go_through_dax_when_configured() -> None:
    order_id = str(uuid.uuid4())
    dax = StandInDax(readmodel.to_item(snapshot(order_id, 2, "CONFIRMED"), ttl_hours=72))
    reads = CachedReadModel(Settings(_env_file=None), pool=None, dynamodb=None, dax=dax, registry=CollectorRegistry())
    found, missing = await reads.batch([uuid.UUID(order_id)])
    assert [(s["status"], source) for s, source in found] == [("CONFIRMED", "dax")] and missing == []
    assert dax.calls == 1
