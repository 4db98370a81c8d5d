"""The orders table: rows in and out, and the camelCase snapshot every event and read carries."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

COLUMNS = """id, customer_id, restaurant_id, status, items, delivery_location, total,
    estimated_delivery_time, created_at, updated_at, version, channel_id, delivery_cost,
    eta_seconds, assignment_source, notes"""


def _iso(value: datetime | None) -> str | None:
    # always six fractional digits: updatedAt is the GSI's sort key, compared as a string
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z") if value else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def snapshot(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "customerId": str(row["customer_id"]),
        "restaurantId": str(row["restaurant_id"]),
        "status": str(row["status"]),
        "items": row["items"],
        "deliveryAddress": row["delivery_location"],
        "notes": row["notes"],
        "total": _money(row["total"]),
        "channelId": row["channel_id"],
        "deliveryCost": _money(row["delivery_cost"]),
        "etaSeconds": row["eta_seconds"],
        "estimatedDeliveryTime": _iso(row["estimated_delivery_time"]),
        "assignmentSource": row["assignment_source"],
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
        "version": row["version"],
    }


async def insert(conn: asyncpg.Connection, values: dict[str, Any]) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO orders (id, customer_id, restaurant_id, status, items, delivery_location,
                total, estimated_delivery_time, channel_id, delivery_cost, eta_seconds,
                assignment_source, notes)
            VALUES ($1, $2, $3, 'PENDING', $4, $5, $6, $7, $8, $9, $10, $11, $12)
            RETURNING {COLUMNS}""",
        values["id"], values["customer_id"], values["restaurant_id"], values["items"],
        values["delivery_location"], values["total"], values["estimated_delivery_time"],
        values["channel_id"], values["delivery_cost"], values["eta_seconds"],
        values["assignment_source"], values["notes"],
    )  # fmt: skip


async def fetch(conn: asyncpg.Connection | asyncpg.Pool, order_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM orders WHERE id = $1", order_id)


async def fetch_many(conn: asyncpg.Connection | asyncpg.Pool, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {COLUMNS} FROM orders WHERE id = ANY($1::uuid[])", ids)


async def lock(conn: asyncpg.Connection, order_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM orders WHERE id = $1 FOR UPDATE", order_id)


async def set_status(conn: asyncpg.Connection, order_id: uuid.UUID, status: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE orders SET status = $2, version = version + 1, updated_at = now()
            WHERE id = $1 RETURNING {COLUMNS}""",
        order_id,
        status,
    )


async def set_channel(conn: asyncpg.Connection, order_id: uuid.UUID, channel_id: str,
                      cost: Decimal, eta_seconds: int, source: str) -> asyncpg.Record:  # fmt: skip
    return await conn.fetchrow(
        f"""UPDATE orders SET channel_id = $2, delivery_cost = $3, eta_seconds = $4::integer,
                assignment_source = $5, estimated_delivery_time = created_at + make_interval(secs => $4::integer),
                version = version + 1, updated_at = now()
            WHERE id = $1 RETURNING {COLUMNS}""",
        order_id, channel_id, cost, eta_seconds, source,
    )  # fmt: skip
