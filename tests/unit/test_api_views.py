"""The API answers with its snapshots as they are (daemons/api/routes.py: no response_model pass),
so the snapshots must already be the contract's shape: each one, put through the documented
models, comes out unchanged - every field, with and without the optional ones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from daemons.api.routes import _status_view
from daemons.api.schemas import OrderStatusView, OrderView
from uoom.domain.orders import Address, LineItem, Order, OrderStatus
from uoom.stores.snapshots import to_snapshot

AT = datetime(2026, 11, 30, 10, 0, 0, 123456, tzinfo=UTC)


def order(**changes: Any) -> Order:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(), "customer_id": uuid.uuid4(), "restaurant_id": uuid.uuid4(),
        "status": OrderStatus.CONFIRMED,
        "items": (LineItem("i1", "Pizza", 2, Decimal("12.50")), LineItem("i2", "Soda", 1, Decimal("0.05"))),
        "delivery_address": Address("1 Main St", "New York", "10001", 40.7, -74.0), "notes": "ring twice",
        "total": Decimal("25.05"), "channel_id": "own-fleet", "delivery_cost": Decimal("4.20"),
        "eta_seconds": 1500, "estimated_delivery_time": AT + timedelta(minutes=25),
        "assignment_source": "optimizer", "created_at": AT, "updated_at": AT.replace(microsecond=0), "version": 3,
    }  # fmt: skip
    fields.update(changes)
    return Order(**fields)


VARIANTS = {
    "every field": {},
    "no channel, cost, eta or notes": {
        "channel_id": None,
        "delivery_cost": None,
        "eta_seconds": None,
        "estimated_delivery_time": None,
        "notes": None,
        "assignment_source": "none",
    },
    "no items, zero total": {"items": (), "total": Decimal("0.00"), "status": OrderStatus.PENDING, "version": 1},
    "in a two-order trip": {"trip_id": uuid.uuid4(), "co_rider_id": uuid.uuid4()},
    "first rider of its trip": {"trip_id": uuid.uuid4()},
}


@pytest.mark.parametrize("changes", VARIANTS.values(), ids=VARIANTS.keys())
def test_an_order_snapshot_is_the_order_view_unchanged(changes: dict[str, Any]) -> None:
    snapshot = to_snapshot(order(**changes))
    assert OrderView.model_validate(snapshot).model_dump(mode="json", by_alias=True) == snapshot


@pytest.mark.parametrize("changes", VARIANTS.values(), ids=VARIANTS.keys())
@pytest.mark.parametrize("source", ["cache", "dynamodb", "dax", "postgres"])
def test_a_status_view_is_the_status_view_model_unchanged(changes: dict[str, Any], source: str) -> None:
    view = _status_view(to_snapshot(order(**changes)), source)
    assert OrderStatusView.model_validate(view).model_dump(mode="json", by_alias=True) == view
