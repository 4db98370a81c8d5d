"""Event names and the Kafka envelope (DESIGN.md): {id, type, aggregateId, aggregateType,
version, occurredAt, data}. `id` is the outbox row id, so consumers dedupe by it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

ORDER_CREATED = "order.created"
ORDER_STATUS_CHANGED = "order.status_changed"
ORDER_CHANNEL_REASSIGNED = "order.channel_reassigned"
# a second order joined this one's trip (the first rider's event: its coRiderId is set)
ORDER_TRIP_JOINED = "order.trip_joined"
AGGREGATE_ORDER = "order"


def envelope(
    event_id: str,
    event_type: str,
    aggregate_id: str,
    aggregate_type: str,
    version: int,
    occurred_at: datetime,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": event_type,
        "aggregateId": aggregate_id,
        "aggregateType": aggregate_type,
        "version": version,
        "occurredAt": occurred_at.isoformat(),
        "data": data,
    }


def order_snapshot(data: dict[str, Any]) -> dict[str, Any] | None:
    """Every order event carries the whole order after the change under `order`."""
    snapshot = data.get("order")
    return snapshot if isinstance(snapshot, dict) else None
