"""The last hours of real orders as a day to replay (`uoom channels weights tune --hours N`): each
order's restaurant position, drop-off, basket, created_at and ready time (created_at + the
restaurant's prep minutes, as the create path tells the optimizer), and the live channel registry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from uoom.assignment.geo import haversine_km
from uoom.channels import enabled_channels
from uoom.domain.channels import Channel
from uoom.replay.day import SimOrder

RECENT_SQL = """
SELECT o.id, o.restaurant_id, o.delivery_location, o.total, o.created_at,
       r.latitude, r.longitude, r.prep_minutes
FROM orders o JOIN restaurants r ON r.id = o.restaurant_id
WHERE o.created_at >= $1
ORDER BY o.created_at, o.id
LIMIT $2
"""


async def recent_orders(
    conn: asyncpg.Connection, hours: float, now: datetime, limit: int | None = None
) -> list[SimOrder]:
    """Every order created in the `hours` before `now` (whatever its status: it was demand), the
    oldest first, at most `limit`; times in seconds since the window's start."""
    start = now - timedelta(hours=hours)
    rows = await conn.fetch(RECENT_SQL, start, limit)
    restaurants: dict[Any, int] = {}
    out = []
    for row in rows:
        drop = row["delivery_location"]
        pickup = (float(row["latitude"]), float(row["longitude"]))
        dropoff = (float(drop["latitude"]), float(drop["longitude"]))
        created = (row["created_at"] - start).total_seconds()
        out.append(
            SimOrder(
                str(row["id"]),
                created,
                pickup,
                dropoff,
                haversine_km(pickup, dropoff),
                float(row["total"]),
                created + row["prep_minutes"] * 60.0,
                restaurants.setdefault(row["restaurant_id"], len(restaurants)),
            )
        )
    return out


async def live_registry(conn: asyncpg.Connection) -> tuple[list[Channel], frozenset[str]]:
    """The enabled channels (no load: a replay starts empty) and those whose couriers carry trips."""
    channels = await enabled_channels(conn)
    return channels, frozenset(c.id for c in channels if c.bundles)
