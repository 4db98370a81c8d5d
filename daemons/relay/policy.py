"""The relay's rules, free of I/O: what a failed publish means, when to retry, what goes together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from uuid import UUID

from aiokafka import errors as kafka

from uoom.stores.outbox import OutboxEvent


class EncodeError(Exception):
    """The row cannot be turned into a Kafka message (e.g. data that is not JSON-encodable)."""


class Failure(Enum):
    PERMANENT = "permanent"  # these bytes can never be accepted: dead-letter at once
    EVENT = "event"  # the broker refused this event: retry with backoff, then dead-letter
    OUTAGE = "outage"  # Kafka or the producer is unusable: try again later, count no attempt


# An event is not to blame when the cluster is unreachable or the producer is broken: those
# failures never move an event towards the dead-letter queue, whatever their length.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    EncodeError,
    kafka.MessageSizeTooLargeError,
    kafka.RecordTooLargeError,
    kafka.RecordListTooLargeError,
    kafka.CorruptRecordException,
    kafka.UnsupportedForMessageFormatError,
)
# After these the producer cannot be trusted with more sends: the relay builds a new one.
PRODUCER_BROKEN: tuple[type[BaseException], ...] = (
    kafka.ProducerClosed,
    kafka.ProducerFenced,
    kafka.IllegalStateError,
    kafka.OutOfOrderSequenceNumber,
    kafka.UnknownProducerId,
    kafka.InvalidProducerEpoch,
)
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    kafka.KafkaTimeoutError,
    *PRODUCER_BROKEN,
    kafka.TopicAuthorizationFailedError,
    kafka.ClusterAuthorizationFailedError,
    ConnectionError,
    OSError,
)


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, PERMANENT_ERRORS):
        return Failure.PERMANENT
    if isinstance(exc, OUTAGE_ERRORS) or (isinstance(exc, kafka.KafkaError) and exc.retriable):
        return Failure.OUTAGE
    return Failure.EVENT


def retry_delay(failed_attempts: int, base: float) -> float:
    """Wait after the n-th failed attempt: base, 2 base, 4 base, ... (1 s, 2 s, 4 s by default)."""
    return base * 2 ** (failed_attempts - 1)


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")[:500]


@dataclass
class Decisions:
    retries: list[tuple[OutboxEvent, float, str]] = field(default_factory=list)  # event, delay, error
    dead: list[tuple[OutboxEvent, str]] = field(default_factory=list)  # event, error
    outage: list[tuple[OutboxEvent, BaseException]] = field(default_factory=list)


def decide(failed: Iterable[tuple[OutboxEvent, BaseException]], max_attempts: int, base: float) -> Decisions:
    out = Decisions()
    for event, exc in failed:
        kind = classify(exc)
        attempts = event.attempts + 1
        if kind is Failure.OUTAGE:
            out.outage.append((event, exc))
        elif kind is Failure.PERMANENT or attempts >= max_attempts:
            out.dead.append((event, describe(exc)))
        else:
            out.retries.append((event, retry_delay(attempts, base), describe(exc)))
    return out


def by_aggregate(events: Iterable[OutboxEvent]) -> dict[UUID, list[OutboxEvent]]:
    """Events per aggregate in position (commit) order; wave k is everyone's k-th event."""
    grouped: dict[UUID, list[OutboxEvent]] = {}
    for event in sorted(events, key=lambda e: e.position):
        grouped.setdefault(event.aggregate_id, []).append(event)
    return grouped
