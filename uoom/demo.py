"""Demo data: the synthetic day's eight channels and a few restaurants in its five hubs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

DEMO_NAMESPACE = uuid.UUID("6f1c2b1e-2d7a-4c38-9a53-5d8f2b6c0e11")

CHANNELS = [  # the day's `bundling` channels carry two-order trips
    # id, name, kind, capacity, base_cost, cost_per_km, speed_kmh, pickup_latency_min, radius_km, quality, bundles
    ("own-bikes", "Own bike fleet", "own_fleet", 40, 3.0, 0.6, 15, 6, 4, 0.95, True),
    ("own-cars", "Own car fleet", "own_fleet", 25, 4.0, 0.8, 22, 8, 8, 0.93, True),
    ("ebike-coop", "E-bike cooperative", "partner", 30, 3.5, 0.9, 17, 7, 5, 0.92, True),
    ("partner-alpha", "Partner Alpha", "partner", 120, 6.5, 1.1, 18, 10, 10, 0.88, False),
    ("partner-beta", "Partner Beta", "partner", 80, 5.5, 1.4, 20, 12, 8, 0.85, False),
    ("crowd-gig", "Crowd gig couriers", "partner", 200, 4.5, 1.6, 14, 15, 6, 0.80, True),
    ("partner-premium", "Partner Premium", "partner", 60, 8.0, 1.0, 25, 5, 12, 0.97, False),
    ("restaurant-self", "Restaurant's own delivery", "restaurant", 50, 2.0, 0.5, 12, 3, 2, 0.90, False),
]

HUBS = {
    "midtown": (40.754, -73.984),
    "village": (40.733, -74.002),
    "brooklyn-heights": (40.696, -73.993),
    "long-island-city": (40.744, -73.948),
    "upper-west-side": (40.787, -73.975),
}


def restaurant_id(name: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_NAMESPACE, name)


def restaurants() -> list[tuple[uuid.UUID, str, float, float]]:
    rows = []
    for hub, (lat, lon) in HUBS.items():
        for i, (dlat, dlon) in enumerate([(0.0, 0.0), (0.004, -0.003), (-0.003, 0.004)]):
            name = f"{hub} kitchen {i + 1}"
            rows.append((restaurant_id(name), name, lat + dlat, lon + dlon))
    return rows


@dataclass
class Seeded:
    """What `load` did with one kind of row: demo ids inserted now, and those found already,
    kept as they are; `changed`: the kept ones that differ from the demo values (an operator's)."""

    inserted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


CHANNEL_COLUMNS = ("id", "name", "kind", "capacity", "base_cost", "cost_per_km", "speed_kmh",
                   "pickup_latency_min", "radius_km", "quality", "bundles")  # fmt: skip
RESTAURANT_COLUMNS = ("id", "name", "latitude", "longitude")


async def load(conn: asyncpg.Connection) -> dict[str, Seeded]:
    """Insert the demo rows that are missing; never touch one that exists (an operator may have
    changed it: disabled a channel, moved a restaurant). Running it twice changes nothing."""
    async with conn.transaction():
        return {
            "channels": await _insert_missing(conn, "channels", CHANNEL_COLUMNS, CHANNELS, {"enabled": True}),
            "restaurants": await _insert_missing(
                conn, "restaurants", RESTAURANT_COLUMNS, restaurants(), {"active": True}
            ),
        }


async def _insert_missing(
    conn: asyncpg.Connection,
    table: str,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    defaults: dict[str, Any],
) -> Seeded:
    names = [*columns, *defaults]
    # table and column names are this module's constants
    ids = [r[0] for r in rows]
    found = await conn.fetch(f"SELECT {', '.join(names)} FROM {table} WHERE id = ANY($1)", ids)  # noqa: S608
    existing = {r["id"]: r for r in found}
    seeded = Seeded()
    missing = []
    for row in rows:
        current = existing.get(row[0])
        if current is None:
            missing.append(row)
            seeded.inserted.append(str(row[0]))
            continue
        seeded.kept.append(str(row[0]))
        if any(not _same(current[n], v) for n, v in zip(names, (*row, *defaults.values()), strict=True)):
            seeded.changed.append(str(row[0]))
    values = ", ".join(f"${i + 1}" for i in range(len(columns)))
    await conn.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) ON CONFLICT (id) DO NOTHING",  # noqa: S608
        missing,
    )
    return seeded


def _same(stored: Any, demo: Any) -> bool:
    if isinstance(stored, Decimal) and isinstance(demo, (int, float)):
        return stored == Decimal(str(demo))
    return bool(stored == demo)
