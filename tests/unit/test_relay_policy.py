"""The relay's pure rules: failure classes, the retry schedule, waves, messages, the doorbell."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import errors as kafka

from daemons.relay.policy import EncodeError, Failure, by_aggregate, classify, decide, retry_delay
from daemons.relay.projector import latest_snapshots
from daemons.relay.publisher import to_message
from daemons.relay.wakeup import Doorbell
from uoom.config import Settings
from uoom.stores.outbox import OutboxEvent


def event(aggregate: uuid.UUID | None = None, position: int = 1, attempts: int = 0, **data: Any) -> OutboxEvent:
    return OutboxEvent(
        id=uuid.uuid4(),
        position=position,
        type="order.created",
        aggregate_id=aggregate or uuid.uuid4(),
        aggregate_type="order",
        aggregate_version=position,
        data=data,
        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        attempts=attempts,
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (kafka.MessageSizeTooLargeError(), Failure.PERMANENT),
        (EncodeError("not JSON"), Failure.PERMANENT),
        (kafka.InvalidTimestampError(), Failure.EVENT),
        (kafka.PolicyViolationError(), Failure.EVENT),
        (RuntimeError("unexpected"), Failure.EVENT),
        (kafka.KafkaConnectionError(), Failure.OUTAGE),
        (kafka.KafkaTimeoutError(), Failure.OUTAGE),
        (kafka.UnknownTopicOrPartitionError(), Failure.OUTAGE),
        (kafka.OutOfOrderSequenceNumber(), Failure.OUTAGE),
        (kafka.TopicAuthorizationFailedError(), Failure.OUTAGE),
        (ConnectionRefusedError(), Failure.OUTAGE),
    ],
)
def test_failures_are_classified(error: BaseException, kind: Failure) -> None:
    assert classify(error) is kind


def test_retry_schedule_is_1_2_4_seconds() -> None:
    assert [retry_delay(n, 1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert retry_delay(2, 0.1) == pytest.approx(0.2)


def test_decide_retries_then_dead_letters_and_never_blames_an_outage() -> None:
    first, third, fourth, huge, down = (event(attempts=n) for n in (0, 2, 3, 0, 3))
    out = decide(
        [
            (first, kafka.InvalidTimestampError()),
            (third, kafka.InvalidTimestampError()),
            (fourth, kafka.InvalidTimestampError()),
            (huge, kafka.MessageSizeTooLargeError()),
            (down, kafka.KafkaConnectionError()),
        ],
        max_attempts=4,
        base=1.0,
    )
    assert [(e, d) for e, d, _ in out.retries] == [(first, 1.0), (third, 4.0)]
    assert [e for e, _ in out.dead] == [fourth, huge]
    assert out.dead[1][1].startswith("MessageSizeTooLargeError")
    assert [e for e, _ in out.outage] == [down]


def test_by_aggregate_keeps_position_order_per_aggregate() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    events = [event(a, 5), event(b, 2), event(a, 1), event(b, 9), event(a, 3)]
    grouped = by_aggregate(events)
    assert [e.position for e in grouped[a]] == [1, 3, 5]
    assert [e.position for e in grouped[b]] == [2, 9]
    assert list(grouped) == [a, b]  # the aggregate with the oldest event first


def test_message_is_the_design_envelope_keyed_by_order() -> None:
    e = event(order={"id": "x"})
    message = to_message(e)
    body = orjson.loads(message.value)
    assert body == {
        "id": str(e.id),
        "type": "order.created",
        "aggregateId": str(e.aggregate_id),
        "aggregateType": "order",
        "version": 1,
        "occurredAt": "2025-01-02T03:04:05+00:00",
        "data": {"order": {"id": "x"}},
    }
    assert message.key == str(e.aggregate_id).encode()
    assert dict(message.headers) == {"type": b"order.created", "id": str(e.id).encode()}
    assert message.timestamp_ms == int(e.created_at.timestamp() * 1000)


def test_message_that_cannot_be_encoded_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        to_message(event(blob=object()))


def test_latest_snapshots_keeps_the_newest_version_per_order() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())

    def body(order: str, version: int) -> bytes:
        snap = {"id": order, "customerId": "c", "status": "PENDING", "version": version}
        return orjson.dumps({"data": {"order": {**snap, "updatedAt": "t", "createdAt": "t"}}})

    newest, unusable = latest_snapshots([body(a, 1), body(b, 2), body(a, 3), body(a, 2), b"{}", b"not json", None])
    assert {k: s["version"] for k, s in newest.items()} == {a: 3, b: 2}
    assert unusable == 3


async def test_doorbell_wakes_one_waiter_and_keeps_a_ring_nobody_heard() -> None:
    bell = Doorbell()
    bell.ring()  # nobody waiting yet: kept
    await asyncio.wait_for(bell.wait(10), 1)

    waiters = [asyncio.create_task(bell.wait(10)) for _ in range(3)]
    await asyncio.sleep(0)
    bell.ring()
    await asyncio.sleep(0.01)
    assert sum(t.done() for t in waiters) == 1
    bell.ring_all()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert bell.rings == 3  # a worker compares this before and after a batch


async def test_a_commit_during_a_fresh_batch_wakes_nobody_but_is_kept_and_a_full_batch_wakes_a_peer() -> None:
    bell = Doorbell()
    idle = asyncio.create_task(bell.wait(10))
    await asyncio.sleep(0)
    with bell.batch():
        bell.ring()  # the busy worker will look again: its idle peer sleeps on
        await asyncio.sleep(0.01)
        assert not idle.done() and bell.rings == 1
    await asyncio.wait_for(bell.wait(10), 1)  # kept for the worker that just finished its batch
    with bell.batch():
        bell.ring_peer()
        await asyncio.wait_for(idle, 1)


async def test_a_commit_during_a_slow_batch_wakes_an_idle_worker() -> None:
    bell = Doorbell()
    idle = asyncio.create_task(bell.wait(10))
    with bell.batch():
        await asyncio.sleep(Doorbell.BUSY_RING_S + 0.01)  # a stalled publish, say
        bell.ring()
        await asyncio.wait_for(idle, 1)


async def test_doorbell_wait_times_out() -> None:
    started = asyncio.get_running_loop().time()
    await Doorbell().wait(0.05)
    assert asyncio.get_running_loop().time() - started >= 0.04


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("90", timedelta(seconds=90)),
        ("P1D", timedelta(days=1)),
    ],
)
def test_outbox_retention_accepts_short_durations(value: str, expected: timedelta) -> None:
    assert Settings(_env_file=None, outbox_retention=value).outbox_retention == expected
