"""The fixed synthetic day (uoom/replay/synthetic-day.json, package data): its orders, seeded, its
channels."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from uoom.assignment.geo import haversine_km
from uoom.domain.channels import Channel

KM_PER_DEG_LAT = 111.32
SYNTHETIC_DAY = Path(__file__).with_name("synthetic-day.json")


@dataclass(slots=True)
class SimOrder:
    order_id: str
    created: float  # seconds since midnight
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    distance_km: float
    value: float
    ready: float  # seconds since midnight
    restaurant: int = 0  # index of its restaurant (same index = same restaurant)


def offset(origin: tuple[float, float], north_km: float, east_km: float) -> tuple[float, float]:
    lat = origin[0] + north_km / KM_PER_DEG_LAT
    return (lat, origin[1] + east_km / (KM_PER_DEG_LAT * math.cos(math.radians(origin[0]))))


def largest_remainder(shares: Sequence[float], total: int) -> list[int]:
    raw = [s / sum(shares) * total for s in shares]
    counts = [math.floor(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[: total - sum(counts)]:
        counts[i] += 1
    return counts


def generate(day: dict[str, Any]) -> list[SimOrder]:
    """The day's orders, from one random.Random(day["seed"]), drawn in a fixed sequence:
    restaurants (hub by largest-remainder share, Gaussian offset of sigma_km north and east,
    redrawn outside the city radius), then per hour (largest-remainder of hourly_share) each
    order's minute, restaurant (uniform), dropoff (exponential distance, redrawn above max,
    uniform bearing), basket (lognormal) and prep time (triangular)."""
    rng = random.Random(day["seed"])
    city = day["city"]
    center = (city["center"]["latitude"], city["center"]["longitude"])
    spec = day["restaurants"]
    restaurants: list[tuple[float, float]] = []
    for hub, count in zip(
        spec["hubs"], largest_remainder([h["share"] for h in spec["hubs"]], spec["count"]), strict=True
    ):
        for _ in range(count):
            while True:
                point = offset(
                    (hub["latitude"], hub["longitude"]), rng.gauss(0, hub["sigma_km"]), rng.gauss(0, hub["sigma_km"])
                )
                if haversine_km(point, center) <= city["radius_km"]:
                    break
            restaurants.append(point)
    prep, dist, basket = spec["prep_minutes"], day["orders"]["dropoff_distance_km"], day["orders"]["basket_value"]
    orders: list[SimOrder] = []
    for hour, count in enumerate(largest_remainder(day["orders"]["hourly_share"], day["orders"]["count"])):
        for _ in range(count):
            created = (hour + rng.random()) * 3600.0
            where = rng.randrange(len(restaurants))
            pickup = restaurants[where]
            km = rng.expovariate(1 / dist["mean"])
            while km > dist["max"]:
                km = rng.expovariate(1 / dist["mean"])
            bearing = rng.uniform(0, 2 * math.pi)
            dropoff = offset(pickup, km * math.cos(bearing), km * math.sin(bearing))
            value = rng.lognormvariate(math.log(basket["median"]), basket["sigma"])
            minutes = rng.triangular(prep["min"], prep["max"], prep["mode"])
            orders.append(
                SimOrder(
                    "", created, pickup, dropoff, haversine_km(pickup, dropoff), value, created + minutes * 60, where
                )
            )
    orders.sort(key=lambda o: o.created)
    for i, o in enumerate(orders):
        o.order_id = f"d{i:05d}"
    return orders


def day_channels(day: dict[str, Any]) -> list[Channel]:
    return [Channel(name=c["id"], **c) for c in day["channels"]]


def twelve_channels(channels: list[Channel]) -> list[Channel]:
    """The 8 channels plus 4 derived from every other one: half the fleet, 10 % dearer base,
    10 % cheaper per km, 10 % faster, 2 min slower to pick up, 2 points less on time."""
    extra = [
        replace(
            c,
            id=f"{c.id}-2",
            name=f"{c.id}-2",
            capacity=max(1, c.capacity // 2),
            base_cost=round(c.base_cost * 1.1, 2),
            cost_per_km=round(c.cost_per_km * 0.9, 3),
            speed_kmh=c.speed_kmh * 1.1,
            pickup_latency_min=c.pickup_latency_min + 2,
            quality=max(0.0, c.quality - 0.02),
        )
        for c in channels[::2]
    ]
    return [*channels, *extra]


def load(path: Path = SYNTHETIC_DAY) -> dict[str, Any]:
    """The day file (the packaged synthetic day unless told otherwise)."""
    day: dict[str, Any] = json.loads(path.read_text())
    return day
