"""The benchmark's synthetic-day generator follows its file and is reproducible."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from uoom.assignment.geo import haversine_km
from uoom.replay import day as day_module

ROOT = Path(__file__).resolve().parents[2]

DAY: dict[str, Any] = {
    "seed": 7,
    "city": {"center": {"latitude": 40.73, "longitude": -73.99}, "radius_km": 8.0},
    "restaurants": {
        "count": 20,
        "hubs": [
            {"name": "a", "latitude": 40.754, "longitude": -73.984, "share": 0.7, "sigma_km": 0.9},
            {"name": "b", "latitude": 40.696, "longitude": -73.993, "share": 0.3, "sigma_km": 1.0},
        ],
        "prep_minutes": {"min": 8, "mode": 15, "max": 35},
    },
    "orders": {
        "count": 500,
        "hourly_share": [0.0] * 11 + [0.5, 0.2] + [0.0] * 5 + [0.3] + [0.0] * 5,
        "dropoff_distance_km": {"distribution": "exponential", "mean": 2.5, "max": 9.0},
        "basket_value": {"distribution": "lognormal", "median": 28.0, "sigma": 0.5},
        "on_time_target_minutes": 45,
    },
}


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return day_module


def test_the_project_holds_its_own_copy_of_the_day_with_the_new_rules() -> None:
    day = day_module.load()
    assert day["reassignment"]["fee_share_of_base_cost"] == 0.5
    assert day["bundling"]["max_orders"] == 2 and day["bundling"]["ready_within_minutes"] == 5
    assert "shared" not in (ROOT / "bench" / "optimizer_bench.py").read_text()


def test_every_order_names_its_restaurant_and_picks_up_there(bench: ModuleType) -> None:
    orders = bench.generate(DAY)
    by_restaurant: dict[int, set[tuple[float, float]]] = {}
    for o in orders:
        by_restaurant.setdefault(o.restaurant, set()).add(o.pickup)
    assert all(len(points) == 1 for points in by_restaurant.values())
    assert len(by_restaurant) > 1 and max(by_restaurant) < DAY["restaurants"]["count"]


def test_orders_follow_the_hourly_shares_and_the_distance_cap(bench: ModuleType) -> None:
    orders = bench.generate(DAY)
    assert len(orders) == 500
    assert Counter(int(o.created // 3600) for o in orders) == {11: 250, 12: 100, 18: 150}
    assert [o.created for o in orders] == sorted(o.created for o in orders)
    assert len({o.order_id for o in orders}) == 500
    assert max(o.distance_km for o in orders) <= 9.0 + 1e-6
    assert 1.8 < sum(o.distance_km for o in orders) / 500 < 3.2  # exponential, mean 2.5, capped at 9
    prep = [(o.ready - o.created) / 60 for o in orders]
    assert min(prep) >= 8 and max(prep) <= 35
    values = sorted(o.value for o in orders)
    assert 22 < values[250] < 34  # lognormal with median 28


def test_restaurants_stay_in_the_city(bench: ModuleType) -> None:
    center = (DAY["city"]["center"]["latitude"], DAY["city"]["center"]["longitude"])
    assert all(haversine_km(o.pickup, center) <= DAY["city"]["radius_km"] for o in bench.generate(DAY))


def test_the_same_seed_gives_the_same_day_and_another_seed_another(bench: ModuleType) -> None:
    first, again = bench.generate(DAY), bench.generate(DAY)
    assert [(o.created, o.pickup, o.dropoff, o.value, o.ready) for o in first] == [
        (o.created, o.pickup, o.dropoff, o.value, o.ready) for o in again
    ]
    other = bench.generate({**DAY, "seed": 8})
    assert [o.created for o in other] != [o.created for o in first]


def test_largest_remainder_keeps_the_total(bench: ModuleType) -> None:
    assert bench.largest_remainder([0.3, 0.25, 0.15, 0.15, 0.15], 200) == [60, 50, 30, 30, 30]
    counts = bench.largest_remainder([1, 1, 1], 10)
    assert sum(counts) == 10 and sorted(counts) == [3, 3, 4]


def test_twelve_channels_are_the_eight_plus_four_derived(bench: ModuleType) -> None:
    day = {
        "channels": [
            {
                "id": f"c{j}",
                "kind": "partner",
                "capacity": 10 + j,
                "base_cost": 3.0,
                "cost_per_km": 1.0,
                "speed_kmh": 15,
                "pickup_latency_min": 5,
                "radius_km": 5,
                "quality": 0.9,
            }
            for j in range(8)
        ]
    }
    twelve = bench.twelve_channels(bench.day_channels(day))
    assert [c.id for c in twelve][8:] == ["c0-2", "c2-2", "c4-2", "c6-2"]
    assert twelve[8].capacity == 5 and math.isclose(twelve[8].base_cost, 3.3)
    assert len({c.id for c in twelve}) == 12
