"""The relay against real PostgreSQL and Kafka: everything once, in order, woken by NOTIFY."""

from __future__ import annotations

import asyncio
import random
import time

from daemons.relay import Relay
from tests.integration.relay_support import (
    assert_once_in_order,
    db,
    pending,
    plan,
    read_topic,
    relay_dsn,
    relay_settings,
    running,
    topic,
    until,
    write_events,
)

__all__ = ["relay_dsn", "topic"]  # fixtures


async def test_relay_publishes_every_event_once_keeping_per_order_order(settings, relay_dsn, topic) -> None:
    cfg = relay_settings(settings, relay_dsn, topic, relay_batch_size=40, relay_concurrency=3)
    events = plan(orders=150, versions=4)
    backlog, live = events[:300], events[300:]
    async with db(relay_dsn) as pool:
        written = await write_events(pool, backlog)  # waiting before the relay starts
        relay = Relay(cfg)
        async with running(relay):
            # the rest while it runs, from four writers at once; an order stays with one writer
            # so its versions are written in order, as the API's row lock makes them
            by_order: dict = {}
            for order, version in live:
                by_order.setdefault(order, []).append((order, version))
            orders = list(by_order.values())
            random.shuffle(orders)
            chunks = [[e for o in orders[i::4] for e in o] for i in range(4)]
            for result in await asyncio.gather(*(write_events(pool, c) for c in chunks)):
                written += result
            await until(_drained(pool), 60)
        rows = await pool.fetch("SELECT processed, published_at, attempts FROM outbox_events")
    received = await read_topic(settings.kafka_bootstrap, topic, expect=len(written))
    assert_once_in_order(written, received)
    assert all(r["processed"] and r["published_at"] and r["attempts"] == 1 for r in rows)
    assert relay.metrics.totals["processed"] == len(written) == 600

    sample = received[0]
    assert sample.key == sample.order.encode()
    assert sample.headers["type"] == b"order.status_changed"
    assert set(sample.body) == {"id", "type", "aggregateId", "aggregateType", "version", "occurredAt", "data"}
    assert sample.body["data"]["order"]["version"] == sample.version


def _drained(pool):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await pending(pool) == 0

    return check


async def test_two_relays_at_once_publish_each_event_once(settings, relay_dsn, topic) -> None:
    cfg = relay_settings(settings, relay_dsn, topic, relay_batch_size=20, relay_concurrency=2)
    first, second = Relay(cfg), Relay(cfg)
    async with db(relay_dsn) as pool:
        written = await write_events(pool, plan(orders=100, versions=3))
        async with running(first, second):
            written += await write_events(pool, plan(orders=200, versions=2))
            await until(_drained(pool), 60)
    received = await read_topic(settings.kafka_bootstrap, topic, expect=len(written))
    assert_once_in_order(written, received)
    shares = first.metrics.totals["processed"], second.metrics.totals["processed"]
    assert sum(shares) == len(written) == 700
    assert min(shares) > 0, f"one relay did all the work: {shares}"


async def test_notify_wakes_the_relay_long_before_the_poll_interval(settings, relay_dsn, topic) -> None:
    cfg = relay_settings(settings, relay_dsn, topic, relay_poll_interval=30.0)
    relay = Relay(cfg)
    async with db(relay_dsn) as pool, running(relay):
        await until(relay._listening.is_set, 10)
        await asyncio.sleep(0.5)  # every worker idle, waiting on the doorbell
        [event] = await write_events(pool, plan(orders=1, versions=1))
        await until(_drained(pool), 5)
        published_after = time.time() - event.committed_at
        row = await pool.fetchrow("SELECT created_at, published_at FROM outbox_events")
    received = await read_topic(settings.kafka_bootstrap, topic, expect=1, settle=0.2)
    assert [r.id for r in received] == [str(event.id)]
    assert published_after < 2.0  # the poll would have taken 30 s
    assert (row["published_at"] - row["created_at"]).total_seconds() < 1.0
    assert received[0].received_at - event.committed_at < 2.0


async def test_poll_publishes_when_no_notify_arrives(settings, relay_dsn, topic) -> None:
    cfg = relay_settings(settings, relay_dsn, topic, relay_poll_interval=1.0)
    relay = Relay(cfg)
    async with db(relay_dsn) as pool:
        await pool.execute("ALTER TABLE outbox_events DISABLE TRIGGER outbox_events_notify")
        async with running(relay):
            await until(relay._listening.is_set, 10)
            await asyncio.sleep(0.3)
            started = time.monotonic()
            written = await write_events(pool, plan(orders=3, versions=2))
            await until(_drained(pool), 5)
            took = time.monotonic() - started
    received = await read_topic(settings.kafka_bootstrap, topic, expect=len(written), settle=0.2)
    assert_once_in_order(written, received)
    assert took < 2.5  # one poll interval and the publish


async def test_events_written_while_their_order_is_in_flight_do_not_wait_for_the_poll(
    settings, relay_dsn, topic
) -> None:
    cfg = relay_settings(settings, relay_dsn, topic, relay_poll_interval=30.0, relay_concurrency=2)
    relay = Relay(cfg)
    async with db(relay_dsn) as pool, running(relay):
        await until(relay._listening.is_set, 10)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        # back to back: each event commits while the one before it (same order) is being published
        written = await write_events(pool, plan(orders=2, versions=15))
        await until(_drained(pool), 10)
        took = time.monotonic() - started
    received = await read_topic(settings.kafka_bootstrap, topic, expect=len(written), settle=0.2)
    assert_once_in_order(written, received)
    assert took < 3.0  # the poll would have taken 30 s
