"""Open trips for the optimizer: one-order trips on a bundling channel, not picked up yet, that a
new order of the same restaurant may join (docs/dispatch.md). The optimizer's feed reads them all
in the background, off the request path. Times are relative to the database's clock (seconds from
now), as the model's."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from uoom.domain.orders import OPEN_STATES

OPEN = sorted(s.value for s in OPEN_STATES)
# Why this shape: its cost must follow the open trips, not the tables. A join of trips and orders
# left the planner free to scan both whole (every trip and order ever made, 3.4 ms a read at 4,000
# orders, five reads a second); here the trips come from a range of trips_open_pickup (migration
# 0006) and each one's rider from orders_trip, one lookup per trip (LATERAL).
QUERY = """
SELECT t.id AS trip_id, t.channel_id, t.restaurant_id, o.id AS order_id, o.delivery_location,
       r.latitude, r.longitude,
       extract(epoch FROM now() - o.created_at)::float8 AS age_s,
       (r.prep_minutes * 60 - extract(epoch FROM now() - o.created_at))::float8 AS ready_in_s
FROM trips t
CROSS JOIN LATERAL (
    SELECT o.id, o.delivery_location, o.created_at FROM orders o
    WHERE o.trip_id = t.id AND o.status = ANY($1::order_status_enum[]) LIMIT 1
) o
JOIN restaurants r ON r.id = t.restaurant_id
WHERE t.riders = 1 AND t.pickup_by > now()
"""


@dataclass(frozen=True, slots=True)
class OpenTripRow:
    """A joinable trip and its one rider; `age_s` since the rider's creation (its assignment: an
    order in a trip is never moved), `ready_in_s` until its food is ready (negative: ready)."""

    trip_id: str
    channel_id: str
    restaurant_id: str
    order_id: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    age_s: float
    ready_in_s: float


async def all_open_trips(pool: asyncpg.Pool | asyncpg.Connection) -> list[OpenTripRow]:
    """Every joinable trip: as many as the bundling channels have slots, each holding one."""
    return [_row(r) for r in await pool.fetch(QUERY, OPEN)]


def _row(r: asyncpg.Record) -> OpenTripRow:
    to = r["delivery_location"]
    return OpenTripRow(str(r["trip_id"]), r["channel_id"], str(r["restaurant_id"]), str(r["order_id"]),
                       (r["latitude"], r["longitude"]), (float(to["latitude"]), float(to["longitude"])),
                       r["age_s"], r["ready_in_s"])  # fmt: skip
