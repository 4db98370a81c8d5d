"""One way to build Kafka clients from the settings, for every process."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from uoom.config import Settings


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """The idempotent, acks=all producer: a retried batch is never written twice, and per
    partition the broker keeps the order of sends. Call `start()` before use, `stop()` after."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": "uoom-relay",
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 0,
        # big batches for backlog drains; a lone event is still sent at once (linger 0)
        "max_batch_size": 512 * 1024,
        "request_timeout_ms": 15000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


# For followers that may lag a little (a status cache, channel load): the broker answers a fetch
# once this much is waiting or the wait is over, instead of once per event. At a steady trickle a
# fetch (and, in a group, an offset commit) per event per follower was a good part of Kafka's CPU.
FOLLOWER_FETCH: dict[str, Any] = {"fetch_min_bytes": 64 * 1024, "fetch_max_wait_ms": 50}


def consumer(settings: Settings, *topics: str, group_id: str | None = None, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer that commits only when told to (`enable_auto_commit=False`) and starts from
    the earliest retained offset when its group has none."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)
