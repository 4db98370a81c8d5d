"""The order as JSON: the camelCase snapshot that every order event, read-model item, idempotent
replay and API response carries. Made here and only here (`to_snapshot`), read back by
`from_snapshot`, so the shape cannot drift between writers.

Money is a string with two decimals ("12.30"), unit prices as the client sent them ("0.1");
times are UTC ISO 8601 with six fractional digits and a Z (updatedAt is the read model's sort
key, compared as a string). Nested objects keep the key order PostgreSQL's jsonb gives them, so a
snapshot made from a fresh `Order` and one decoded from a stored row are the same bytes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from uoom.domain.orders import Address, LineItem, Order, OrderStatus


def to_snapshot(order: Order) -> dict[str, Any]:
    return {
        "id": str(order.id),
        "customerId": str(order.customer_id),
        "restaurantId": str(order.restaurant_id),
        "status": order.status.value,
        "items": items_json(order.items),
        "deliveryAddress": address_json(order.delivery_address),
        "notes": order.notes,
        "total": _money(order.total),
        "channelId": order.channel_id,
        "deliveryCost": _money(order.delivery_cost),
        "etaSeconds": order.eta_seconds,
        "estimatedDeliveryTime": _iso(order.estimated_delivery_time),
        "assignmentSource": order.assignment_source,
        "createdAt": _iso(order.created_at),
        "updatedAt": _iso(order.updated_at),
        "version": order.version,
        "tripId": _id(order.trip_id),
        "coRiderId": _id(order.co_rider_id),
    }


def from_snapshot(data: dict[str, Any]) -> Order:
    return Order(
        id=UUID(data["id"]),
        customer_id=UUID(data["customerId"]),
        restaurant_id=UUID(data["restaurantId"]),
        status=OrderStatus(data["status"]),
        items=items_from_json(data["items"]),
        delivery_address=address_from_json(data["deliveryAddress"]),
        notes=data["notes"],
        total=Decimal(data["total"]),
        channel_id=data["channelId"],
        delivery_cost=None if data["deliveryCost"] is None else Decimal(data["deliveryCost"]),
        eta_seconds=data["etaSeconds"],
        estimated_delivery_time=_time(data["estimatedDeliveryTime"]),
        assignment_source=data["assignmentSource"],
        created_at=datetime.fromisoformat(data["createdAt"]),
        updated_at=datetime.fromisoformat(data["updatedAt"]),
        version=data["version"],
        # snapshots written before trips (read-model items, idempotent answers) have neither
        trip_id=_uuid(data.get("tripId")),
        co_rider_id=_uuid(data.get("coRiderId")),
    )


def items_json(items: tuple[LineItem, ...]) -> list[dict[str, Any]]:
    return [
        {"name": i.name, "itemId": i.item_id, "quantity": i.quantity, "unitPrice": str(i.unit_price)} for i in items
    ]


def items_from_json(items: list[dict[str, Any]]) -> tuple[LineItem, ...]:
    return tuple(LineItem(i["itemId"], i["name"], int(i["quantity"]), Decimal(str(i["unitPrice"]))) for i in items)


def address_json(a: Address) -> dict[str, Any]:
    return {"city": a.city, "street": a.street, "latitude": a.latitude, "longitude": a.longitude,
            "postalCode": a.postal_code}  # fmt: skip


def address_from_json(a: dict[str, Any]) -> Address:
    return Address(a["street"], a["city"], a["postalCode"], float(a["latitude"]), float(a["longitude"]))


def _iso(value: datetime | None) -> str | None:
    # always six fractional digits: updatedAt is the GSI's sort key, compared as a string
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z") if value else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _id(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"
