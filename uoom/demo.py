"""Demo data: the synthetic day's eight channels and a few restaurants in its five hubs."""

from __future__ import annotations

import uuid

import asyncpg

DEMO_NAMESPACE = uuid.UUID("6f1c2b1e-2d7a-4c38-9a53-5d8f2b6c0e11")

CHANNELS = [
    # id, name, kind, capacity, base_cost, cost_per_km, speed_kmh, pickup_latency_min, radius_km, quality
    ("own-bikes", "Own bike fleet", "own_fleet", 40, 3.0, 0.6, 15, 6, 4, 0.95),
    ("own-cars", "Own car fleet", "own_fleet", 25, 4.0, 0.8, 22, 8, 8, 0.93),
    ("ebike-coop", "E-bike cooperative", "partner", 30, 3.5, 0.9, 17, 7, 5, 0.92),
    ("partner-alpha", "Partner Alpha", "partner", 120, 6.5, 1.1, 18, 10, 10, 0.88),
    ("partner-beta", "Partner Beta", "partner", 80, 5.5, 1.4, 20, 12, 8, 0.85),
    ("crowd-gig", "Crowd gig couriers", "partner", 200, 4.5, 1.6, 14, 15, 6, 0.80),
    ("partner-premium", "Partner Premium", "partner", 60, 8.0, 1.0, 25, 5, 12, 0.97),
    ("restaurant-self", "Restaurant's own delivery", "restaurant", 50, 2.0, 0.5, 12, 3, 2, 0.90),
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


async def load(conn: asyncpg.Connection) -> dict[str, int]:
    """Insert or refresh the demo rows; running it twice changes nothing."""
    async with conn.transaction():
        await conn.executemany(
            """INSERT INTO channels (id, name, kind, capacity, base_cost, cost_per_km, speed_kmh,
                                     pickup_latency_min, radius_km, quality)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
                 capacity = EXCLUDED.capacity, base_cost = EXCLUDED.base_cost,
                 cost_per_km = EXCLUDED.cost_per_km, speed_kmh = EXCLUDED.speed_kmh,
                 pickup_latency_min = EXCLUDED.pickup_latency_min, radius_km = EXCLUDED.radius_km,
                 quality = EXCLUDED.quality, enabled = true, updated_at = now()""",
            CHANNELS,
        )
        await conn.executemany(
            """INSERT INTO restaurants (id, name, latitude, longitude) VALUES ($1, $2, $3, $4)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, latitude = EXCLUDED.latitude,
                 longitude = EXCLUDED.longitude, active = true""",
            restaurants(),
        )
    return {"channels": len(CHANNELS), "restaurants": len(restaurants())}
