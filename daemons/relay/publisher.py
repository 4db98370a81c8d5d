"""Outbox rows -> Kafka messages, sent in waves so that per aggregate nothing overtakes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from daemons.relay.policy import EncodeError, by_aggregate
from uoom.domain.events import envelope
from uoom.stores.outbox import OutboxEvent

log = logging.getLogger("uoom.relay")
STALL_REPORT_SECONDS = 5.0

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Message:
    key: bytes
    value: bytes
    headers: Headers
    timestamp_ms: int


@dataclass
class Outcome:
    published: list[OutboxEvent] = field(default_factory=list)
    failed: list[tuple[OutboxEvent, BaseException]] = field(default_factory=list)
    acked_at: float = 0.0  # time.time() when the last wave was acknowledged
    # The broker refused a sent batch. aiokafka's idempotent producer does not rewind its
    # sequence numbers after that, so its next batch to that partition would be refused as out
    # of sequence: the relay replaces the producer.
    broker_refused: bool = False


def to_message(event: OutboxEvent) -> Message:
    """The DESIGN envelope, keyed by aggregate id (per-order order in one partition), with the
    type and id as headers so consumers can route and dedupe without parsing the body."""
    body = envelope(
        str(event.id),
        event.type,
        str(event.aggregate_id),
        event.aggregate_type,
        event.aggregate_version,
        event.created_at,
        event.data,
    )
    try:
        value = orjson.dumps(body)
    except TypeError as exc:
        raise EncodeError(str(exc)) from exc
    return Message(
        key=str(event.aggregate_id).encode(),
        value=value,
        headers=[("type", event.type.encode()), ("id", str(event.id).encode())],
        timestamp_ms=int(event.created_at.timestamp() * 1000),
    )


class Publisher:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        dlq_topic: str,
        on_stall: Callable[[float | None], None] = lambda _: None,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.dlq_topic = dlq_topic
        self._on_stall = on_stall  # seconds Kafka has kept us waiting, None when it answered

    async def publish(self, events: list[OutboxEvent]) -> Outcome:
        """Wave k holds the k-th claimed event of every aggregate still in the running: an event
        is sent only once the one before it (same aggregate) was acknowledged, and a failure
        stops its aggregate for this batch. So a retry or a partial failure can never let a
        later event of an order reach Kafka before an earlier one."""
        outcome = Outcome()
        pending = by_aggregate(events)
        depth = 0
        while wave := [chain[depth] for chain in pending.values() if depth < len(chain)]:
            results, refused = await self._send_wave(wave)
            outcome.acked_at = time.time()
            outcome.broker_refused |= refused
            for event, error in zip(wave, results, strict=True):
                if error is None:
                    outcome.published.append(event)
                else:
                    outcome.failed.append((event, error))
                    del pending[event.aggregate_id]
            depth += 1
        return outcome

    async def _send_wave(self, wave: list[OutboxEvent]) -> tuple[list[BaseException | None], bool]:
        sent: list[asyncio.Future[Any] | BaseException] = []
        for event in wave:
            try:
                message = to_message(event)
                if event.attempts:
                    sent.append(await self._send_alone(self.topic, message))
                else:
                    sent.append(await self._send(self.topic, message))
            except (KafkaError, EncodeError, OSError) as exc:  # refused before it left
                sent.append(exc)
        futures = [f for f in sent if isinstance(f, asyncio.Future)]
        await self._wait(futures)
        return [_error_of(f) for f in sent], any(_error_of(f) is not None for f in futures)

    async def _send(self, topic: str, message: Message) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await self.producer.send(
            topic,
            message.value,
            key=message.key,
            headers=message.headers,
            timestamp_ms=message.timestamp_ms,
        )
        return future

    async def _send_alone(self, topic: str, message: Message) -> asyncio.Future[Any]:
        """A record batch of its own: the broker accepts or refuses a batch as a whole, so an
        event that failed before must not drag innocent neighbours down with it again."""
        batch = self.producer.create_batch()
        if (
            batch.append(timestamp=message.timestamp_ms, key=message.key, value=message.value, headers=message.headers)
            is None
        ):
            return await self._send(topic, message)  # larger than a batch: the send decides
        batch.close()
        partitions = list(await self.producer.partitions_for(topic))  # the order send() uses
        partition = DefaultPartitioner()(message.key, partitions, partitions)
        future: asyncio.Future[Any] = await self.producer.send_batch(batch, topic, partition=partition)
        return future

    async def _wait(self, futures: list[asyncio.Future[Any]]) -> None:
        """Wait for every acknowledgement. The idempotent producer retries an unreachable
        broker on its own, without duplicates, until the broker is back: we wait with it,
        holding the batch, and say so. Shutdown cancels this wait after its grace period."""
        started = time.monotonic()
        pending = set(futures)
        try:
            while pending:
                _, pending = await asyncio.wait(pending, timeout=STALL_REPORT_SECONDS)
                if pending:
                    waited = time.monotonic() - started
                    self._on_stall(waited)
                    log.warning(
                        "Kafka has not acknowledged %d events for %.0f s; waiting (nothing is lost)",
                        len(pending),
                        waited,
                    )
        finally:
            if time.monotonic() - started >= STALL_REPORT_SECONDS:
                self._on_stall(None)

    async def publish_dead(self, dead: list[tuple[OutboxEvent, str]]) -> None:
        """Copy dead-lettered events to the DLQ topic: the original envelope, the error and the
        attempt history in headers. The dead-letter table is the record; this is a feed, so
        a failure here is logged, not retried."""
        sent: list[tuple[OutboxEvent, asyncio.Future[Any] | BaseException]] = []
        for event, error in dead:
            history = [*event.error_history, {"attempt": event.attempts + 1, "error": error}]
            headers = [
                ("type", event.type.encode()),
                ("id", str(event.id).encode()),
                ("error", error.encode()),
                ("attempts", str(event.attempts + 1).encode()),
                ("errorHistory", orjson.dumps(history, default=str)),
            ]
            try:
                try:
                    message = to_message(event)
                    message = Message(message.key, message.value, headers, message.timestamp_ms)
                    sent.append((event, await self._send(self.dlq_topic, message)))
                except (EncodeError, MessageSizeTooLargeError):  # the body is the problem: send the rest
                    stub = Message(str(event.aggregate_id).encode(), b"null", headers, _now_ms())
                    sent.append((event, await self._send(self.dlq_topic, stub)))
            except (KafkaError, OSError) as exc:
                sent.append((event, exc))
        await self._wait([f for _, f in sent if isinstance(f, asyncio.Future)])
        for event, f in sent:
            if (failure := _error_of(f)) is not None:
                log.error("event %s is in the dead-letter table but not on %s: %s", event.id, self.dlq_topic, failure)


def _error_of(sent: asyncio.Future[Any] | BaseException) -> BaseException | None:
    if isinstance(sent, BaseException):
        return sent
    if sent.cancelled():
        return asyncio.CancelledError()
    return sent.exception()


def _now_ms() -> int:
    return int(time.time() * 1000)
