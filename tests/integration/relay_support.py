"""Helpers shared by the relay tests (no tests in here): a migrated scratch database and a Kafka
topic per test, an outbox writer, a real Kafka reader, and a relay running in the test's loop.

Each test gets its own database: a relay claims every pending row of its database, so sharing
`uoom_test` would publish (and mark) other tests' events.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import SecretStr

from daemons.relay import Relay
from uoom import migrate
from uoom.config import Settings
from uoom.stores.kafka import consumer as kafka_consumer
from uoom.stores.postgres import create_pool


def free_ports(count: int = 1, low: int = 30000, high: int = 60000) -> int:
    """The first of `count` consecutive free local ports (Kafka takes port and port + 1)."""
    for _ in range(100):
        first = random.randint(low, high)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(first, first + count):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise RuntimeError("no free ports")


@pytest.fixture
async def relay_dsn(scratch_dsn: str) -> str:
    await migrate.up(scratch_dsn)
    return scratch_dsn


@pytest.fixture
async def topic(stack: Any, settings: Settings) -> AsyncIterator[str]:
    async with kafka_topics(settings.kafka_bootstrap) as name:
        yield name


@contextlib.asynccontextmanager
async def kafka_topics(bootstrap: str, **configs: str) -> AsyncIterator[str]:
    """A fresh topic and its `.dlq` companion, deleted afterwards."""
    name = f"uoom-test-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 6, 1, topic_configs=configs), NewTopic(f"{name}.dlq", 1, 1)])
        yield name
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([name, f"{name}.dlq"])
        await admin.close()


def relay_settings(settings: Settings, dsn: str, topic: str, **more: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": SecretStr(dsn),
        "kafka_topic": topic,
        "kafka_dlq_topic": f"{topic}.dlq",
        "relay_metrics_port": 0,
        "relay_poll_interval": 1.0,
        "relay_retry_base_seconds": 0.2,
        "relay_projector": False,
        "relay_projector_group": f"projector-{topic}",
        "relay_prune_interval": 0.0,
    }
    values.update(more)
    return settings.model_copy(update=values)


def snapshot(order_id: uuid.UUID, version: int, status: str = "CONFIRMED") -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "id": str(order_id),
        "customerId": str(uuid.UUID(int=order_id.int ^ 1)),
        "status": status,
        "version": version,
        "createdAt": now,
        "updatedAt": now,
    }


@dataclass(frozen=True)
class Written:
    id: uuid.UUID
    order: uuid.UUID
    version: int
    committed_at: float  # time.time() right after the commit returned


async def write_events(
    conn: asyncpg.Connection | asyncpg.Pool,
    events: Iterable[tuple[uuid.UUID, int]],
    *,
    created_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> list[Written]:
    """One transaction per event, as the API writes them: (order id, version) each."""
    written = []
    for order, version in events:
        event_id = uuid.uuid4()
        body = data if data is not None else {"order": snapshot(order, version)}
        await conn.execute(
            """INSERT INTO outbox_events (id, type, aggregate_id, aggregate_type, aggregate_version, data,
                                          created_at)
               VALUES ($1, 'order.status_changed', $2, 'order', $3, $4, coalesce($5, now()))""",
            event_id,
            order,
            version,
            body,
            created_at,
        )
        written.append(Written(event_id, order, version, time.time()))
    return written


def plan(orders: int, versions: int) -> list[tuple[uuid.UUID, int]]:
    """Events interleaved across orders (round robin), each order's versions in order."""
    ids = [uuid.uuid4() for _ in range(orders)]
    return [(order, v) for v in range(1, versions + 1) for order in ids]


@contextlib.asynccontextmanager
async def db(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    settings = Settings(database_url=SecretStr(dsn))
    pool = await create_pool(settings, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@dataclass(frozen=True)
class Received:
    id: str
    order: str
    version: int
    body: dict[str, Any]
    key: bytes
    headers: dict[str, bytes]
    received_at: float


async def read_topic(
    bootstrap: str, topic: str, expect: int, timeout: float = 60.0, settle: float = 1.0
) -> list[Received]:
    """Every message of `topic` from the start, in partition order, until `expect` distinct ids
    arrived and nothing more came for `settle` seconds (so duplicates would show), or timeout."""
    consumer = kafka_consumer(Settings(kafka_bootstrap=bootstrap), topic, group_id=None)
    await consumer.start()
    received: list[Received] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batches.values():
                for r in records:
                    body = orjson.loads(r.value) if r.value and r.value != b"null" else {}
                    headers = {k: v for k, v in r.headers}
                    item = Received(
                        headers.get("id", b"").decode(),
                        body.get("aggregateId", ""),
                        body.get("version", 0),
                        body,
                        r.key,
                        headers,
                        now,
                    )
                    received.append(item)
                    seen.add(item.id)
            if batches:
                quiet_since = time.monotonic()
            elif len(seen) >= expect and time.monotonic() - quiet_since >= settle:
                break
    finally:
        await consumer.stop()
    return received


def assert_once_in_order(written: list[Written], received: list[Received]) -> None:
    """Every written event arrived exactly once; per order, in the order written."""
    ids = [r.id for r in received]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicates"
    assert set(ids) == {str(w.id) for w in written}
    assert_order_kept(written, received)


def assert_order_kept(written: list[Written], received: list[Received]) -> None:
    """Per order, first arrivals come in the order written (duplicates may repeat later)."""
    expected: dict[str, list[str]] = {}
    for w in written:
        expected.setdefault(str(w.order), []).append(str(w.id))
    arrived: dict[str, list[str]] = {}
    seen: set[str] = set()
    for r in received:
        if r.id not in seen:
            seen.add(r.id)
            arrived.setdefault(r.order, []).append(r.id)
    for order, ids in expected.items():
        assert arrived.get(order) == ids, f"order {order}: events out of order or missing"


@contextlib.asynccontextmanager
async def running(*relays: Relay, serve_metrics: bool = False) -> AsyncIterator[None]:
    """Relays running in this event loop; stopped gracefully (and checked for errors) after."""
    tasks = [asyncio.create_task(r.run(serve_metrics=serve_metrics)) for r in relays]
    try:
        await until(lambda: all(r.state == "running" for r in relays) or any(t.done() for t in tasks), 30)
        for task in tasks:
            if task.done():
                task.result()
        yield
    finally:
        for r in relays:
            r.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def until(condition: Any, timeout: float, every: float = 0.05) -> None:
    """Wait until `condition()` (sync or async) is true; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)


async def pending(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox_events WHERE NOT processed"))
