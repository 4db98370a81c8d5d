"""The channel registry in PostgreSQL: the delivery channels, their costs, speed, reach, quality."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import asyncpg

from uoom.domain.channels import Channel
from uoom.errors import UoomError, UsageError

FIELDS = ("name", "kind", "capacity", "base_cost", "cost_per_km", "speed_kmh", "pickup_latency_min",
          "radius_km", "quality", "bundles")  # fmt: skip
SELECT = "SELECT id, enabled, " + ", ".join(FIELDS) + " FROM channels"
CHANGED = "uoom_channels"  # NOTIFY channel: the registry changed (payload: the channel id)


def to_channel(row: Any, load: int = 0) -> Channel:
    return Channel(
        id=row["id"], name=row["name"], kind=row["kind"], capacity=row["capacity"],
        base_cost=float(row["base_cost"]), cost_per_km=float(row["cost_per_km"]),
        speed_kmh=float(row["speed_kmh"]), pickup_latency_min=float(row["pickup_latency_min"]),
        radius_km=float(row["radius_km"]), quality=float(row["quality"]), load=load,
        bundles=bool(row.get("bundles", False)),
    )  # fmt: skip


def validate(values: dict[str, Any], channel_id: str = "new") -> Channel:
    """Check a full set of fields with the domain's own rules (`bundles` may be left out: False);
    raises UsageError naming the field."""
    try:
        return Channel(id=channel_id, **{k: values[k] for k in FIELDS if k in values or k != "bundles"})
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"invalid channel: {exc}") from None


async def list_channels(conn: asyncpg.Connection | asyncpg.Pool, enabled_only: bool = False) -> list[dict[str, Any]]:
    query = SELECT + (" WHERE enabled" if enabled_only else "") + " ORDER BY id"
    return [dict(r) for r in await conn.fetch(query)]


async def enabled_channels(conn: asyncpg.Connection | asyncpg.Pool) -> list[Channel]:
    return [to_channel(r) for r in await conn.fetch(SELECT + " WHERE enabled ORDER BY id")]


async def get(conn: asyncpg.Connection | asyncpg.Pool, channel_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(SELECT + " WHERE id = $1", channel_id)
    if row is None:
        raise UoomError(f"no channel '{channel_id}'; see `uoom channels list`")
    return dict(row)


async def add(conn: asyncpg.Connection, channel_id: str, values: dict[str, Any]) -> dict[str, Any]:
    channel = validate(values, channel_id)
    row = asdict(channel)
    try:
        await conn.execute(
            "INSERT INTO channels (id, " + ", ".join(FIELDS) + ") VALUES ("
            + ", ".join(f"${i}" for i in range(1, len(FIELDS) + 2)) + ")",
            channel_id, *(row[k] for k in FIELDS),
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        raise UsageError(f"channel '{channel_id}' exists already; change it with `uoom channels set`") from None
    except asyncpg.CheckViolationError as exc:
        raise UsageError(f"invalid channel: {exc.constraint_name}") from None
    await conn.execute("SELECT pg_notify($1, $2)", CHANGED, channel_id)
    return await get(conn, channel_id)


async def update(conn: asyncpg.Connection, channel_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(FIELDS) - {"enabled"})
    if unknown:
        raise UsageError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}, enabled")
    current = await get(conn, channel_id)
    validate({**current, **changes}, channel_id)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
    await conn.execute(
        f"UPDATE channels SET {assignments}, updated_at = now() WHERE id = $1",  # names checked above
        channel_id, *changes.values(),
    )  # fmt: skip
    await conn.execute("SELECT pg_notify($1, $2)", CHANGED, channel_id)
    return await get(conn, channel_id)
