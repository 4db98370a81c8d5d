"""Failures: a poison event, an oversized one, Kafka stopped mid-stream. Real broker refusals,
real broker outages; nothing is faked."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from daemons.relay import Relay
from daemons.relay.daemon import STOP_GRACE_SECONDS
from tests.integration.relay_support import (
    assert_once_in_order,
    assert_order_kept,
    db,
    free_ports,
    kafka_topics,
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
from uoom.config import Settings
from uoom.stack import Stack

__all__ = ["relay_dsn", "topic"]  # fixtures


def _drained(pool):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await pending(pool) == 0

    return check


@pytest.fixture
async def strict_topic(stack, settings) -> AsyncIterator[str]:
    """A topic whose broker refuses records stamped more than a minute in the future: a real,
    per-event refusal that the relay cannot tell from any other broker rejection."""
    async with kafka_topics(settings.kafka_bootstrap, **{"message.timestamp.after.max.ms": "60000"}) as name:
        yield name


async def test_poison_event_is_retried_after_1_2_4_then_dead_lettered_while_others_flow(
    settings, relay_dsn, strict_topic
) -> None:
    base = 0.3
    cfg = relay_settings(settings, relay_dsn, strict_topic, relay_retry_base_seconds=base, relay_batch_size=50)
    poisoned = uuid.uuid4()
    relay = Relay(cfg)
    async with db(relay_dsn) as pool:
        before = await write_events(pool, plan(orders=20, versions=1))
        [poison] = await write_events(pool, [(poisoned, 1)], created_at=datetime.now(UTC) + timedelta(days=1))
        [behind] = await write_events(pool, [(poisoned, 2)])  # must wait for the poison
        async with running(relay):
            await until(lambda: relay.metrics.totals["retries"] >= 1, 10)
            during = await write_events(pool, plan(orders=20, versions=2))  # while it backs off
            await until(_drained(pool), 20)
        [dead] = await pool.fetch("SELECT * FROM dead_letters")
        published = {
            r["id"]: r["published_at"]
            for r in await pool.fetch("SELECT id, published_at FROM outbox_events WHERE processed")
        }
    assert dead["id"] == poison.id
    assert dead["attempts"] == 4
    assert "InvalidTimestamp" in dead["last_error"]
    history = dead["error_history"]
    assert [h["attempt"] for h in history] == [1, 2, 3, 4]
    at = [datetime.fromisoformat(h["at"]) for h in history]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(at)]
    for gap, expected in zip(gaps, [base, 2 * base, 4 * base], strict=True):
        assert expected * 0.95 <= gap < expected + 1.0, gaps
    # other orders never waited for the poison; its own next event did, then went out
    others = [w for w in during if w.order != poisoned]
    assert all(published[w.id] < dead["failed_at"] for w in others)
    assert published[behind.id] > dead["failed_at"]

    received = await read_topic(settings.kafka_bootstrap, strict_topic, expect=len(before) + len(during) + 1)
    assert_once_in_order([*before, behind, *during], received)
    [dlq] = await read_topic(settings.kafka_bootstrap, f"{strict_topic}.dlq", expect=1, settle=0.2)
    assert dlq.id == str(poison.id)
    assert dlq.headers["attempts"] == b"4"
    assert len(orjson.loads(dlq.headers["errorHistory"])) == 4
    assert dlq.body["aggregateId"] == str(poisoned)
    # neighbours in the poison's first record batch were refused with it: retried alone, they passed
    assert relay.metrics.totals["deadLettered"] == 1 and relay.metrics.totals["retries"] >= 3


async def test_event_too_large_for_kafka_is_dead_lettered_at_once(settings, relay_dsn, topic) -> None:
    cfg = relay_settings(settings, relay_dsn, topic)
    order = uuid.uuid4()
    relay = Relay(cfg)
    async with db(relay_dsn) as pool:
        [huge] = await write_events(pool, [(order, 1)], data={"blob": "x" * 1_200_000})
        [after] = await write_events(pool, [(order, 2)])
        async with running(relay):
            await until(_drained(pool), 10)
        dead = await pool.fetchrow("SELECT id, attempts, last_error FROM dead_letters")
    assert (dead["id"], dead["attempts"]) == (huge.id, 1)
    assert "MessageSizeTooLarge" in dead["last_error"]
    received = await read_topic(settings.kafka_bootstrap, topic, expect=1, settle=0.2)
    assert [r.id for r in received] == [str(after.id)]
    [dlq] = await read_topic(settings.kafka_bootstrap, f"{topic}.dlq", expect=1, settle=0.2)
    assert dlq.id == str(huge.id) and dlq.headers["attempts"] == b"1"  # the body did not fit: headers only


@pytest.fixture
async def own_kafka(stack, tmp_path: Path) -> AsyncIterator[Stack]:
    """A Kafka broker of this test's own (other ports, temporary home), to stop and start at
    will without touching the shared one; torn down whatever happens."""
    port = free_ports(2)
    own = Stack(Settings(home=tmp_path / "home", kafka_bootstrap=f"127.0.0.1:{port}"))
    await own.up(["kafka"])
    try:
        yield own
    finally:
        own.down(["kafka"])


async def test_kafka_stopped_mid_stream_then_started_loses_nothing(settings, relay_dsn, own_kafka) -> None:
    bootstrap = own_kafka.settings.kafka_bootstrap
    async with kafka_topics(bootstrap) as name:
        cfg = relay_settings(settings, relay_dsn, name, kafka_bootstrap=bootstrap, relay_batch_size=20)
        relay = Relay(cfg)
        events = plan(orders=60, versions=5)
        written = []
        async with db(relay_dsn) as pool, running(relay):

            async def writer() -> None:
                for i in range(0, len(events), 6):  # ~60 events/s
                    written.extend(await write_events(pool, events[i : i + 6]))
                    await asyncio.sleep(0.1)

            writing = asyncio.create_task(writer())
            await until(lambda: relay.metrics.totals["processed"] >= 50, 20)
            own_kafka.down(["kafka"])
            stopped_at = relay.metrics.totals["processed"]
            await asyncio.sleep(3)  # the writer goes on; the relay waits on its batch
            assert relay.metrics.totals["processed"] - stopped_at <= 40  # only what was in flight
            await own_kafka.up(["kafka"])
            await writing
            await until(_drained(pool), 90)
            started = time.monotonic()
        assert time.monotonic() - started < 30  # graceful stop did not hang
        received = await read_topic(bootstrap, name, expect=len(written), timeout=60)
    assert {r.id for r in received} == {str(w.id) for w in written}
    assert_order_kept(written, received)
    assert len(received) - len(written) <= 2 * 20  # duplicates only from the batch in flight
    # an outage is not the events' fault: no attempt counted, nothing dead-lettered
    assert relay.metrics.totals["retries"] == 0 and relay.metrics.totals["deadLettered"] == 0


async def test_stopping_during_a_kafka_outage_is_bounded_and_loses_nothing(settings, relay_dsn, own_kafka) -> None:
    """SIGTERM's path while the broker is gone: the relay stops within its grace period instead of
    waiting for Kafka, marks nothing published that Kafka did not acknowledge, and the next relay
    publishes the rest once the broker is back."""
    bootstrap = own_kafka.settings.kafka_bootstrap
    async with kafka_topics(bootstrap) as name, db(relay_dsn) as pool:
        cfg = relay_settings(settings, relay_dsn, name, kafka_bootstrap=bootstrap, relay_batch_size=20)
        first = Relay(cfg)
        written = await write_events(pool, plan(orders=20, versions=3))
        async with running(first):
            await until(_drained(pool), 30)
            own_kafka.down(["kafka"])
            written += await write_events(pool, plan(orders=20, versions=3))
            await asyncio.sleep(1)  # the relay has claimed a batch and waits on the broker
            started = time.monotonic()
        # a batch waits for the broker for the stop's grace period, then is abandoned, uncommitted
        assert time.monotonic() - started < STOP_GRACE_SECONDS + 8, "stopping waited on the broker too long"
        assert await pending(pool) > 0  # unacknowledged events stayed in the outbox

        await own_kafka.up(["kafka"])
        async with running(Relay(cfg)):
            await until(_drained(pool), 90)
        received = await read_topic(bootstrap, name, expect=len(written), timeout=60)
    assert {r.id for r in received} == {str(w.id) for w in written}
    assert_order_kept(written, received)
