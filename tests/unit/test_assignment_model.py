"""The plain values, the geometry and the cost model of channel assignment."""

from __future__ import annotations

import random

import pytest

from uoom.assignment import Channel, Delivery, Weights
from uoom.assignment.costs import SCALE, CostTable, build_cost_table, channel_terms, dollars, eta_seconds, score
from uoom.assignment.geo import haversine_km


def channel(**changes: object) -> Channel:
    fields: dict[str, object] = {
        "id": "bikes",
        "name": "Bikes",
        "kind": "own_fleet",
        "capacity": 10,
        "base_cost": 3.0,
        "cost_per_km": 0.6,
        "speed_kmh": 15.0,
        "pickup_latency_min": 6.0,
        "radius_km": 4.0,
        "quality": 0.95,
    }
    fields.update(changes)
    return Channel(**fields)  # type: ignore[arg-type]


def test_weights_default_to_the_synthetic_day() -> None:
    assert Weights() == Weights(cost=0.5, time=0.3, quality=0.2, capacity=0.0)


def test_weights_normalize_to_one() -> None:
    w = Weights(cost=2, time=1, quality=1, capacity=0).normalized()
    assert (w.cost, w.time, w.quality, w.capacity) == (0.5, 0.25, 0.25, 0.0)


@pytest.mark.parametrize("bad", [{"cost": -0.1}, {"cost": float("nan")}, {"cost": 0, "time": 0, "quality": 0}])
def test_weights_reject_negative_nan_and_all_zero(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Weights(**bad)


def test_weights_from_mapping_parses_numbers_and_normalizes() -> None:
    w = Weights.from_mapping({"cost": "0.4", "time": 0.3, "quality": 0.2, "capacity": "0.1"})
    assert w == Weights(cost=0.4, time=0.3, quality=0.2, capacity=0.1).normalized()
    assert Weights.from_mapping({"cost": 3}) == Weights(cost=1.0, time=0.0, quality=0.0, capacity=0.0)


@pytest.mark.parametrize("raw", [{"speed": 1}, {"cost": "cheap"}, {"cost": -1}])
def test_weights_from_mapping_rejects_unknown_criteria_and_bad_numbers(raw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Weights.from_mapping(raw)


@pytest.mark.parametrize(
    "bad", [{"kind": "drone"}, {"capacity": -1}, {"load": -1}, {"speed_kmh": 0}, {"quality": 1.5}, {"radius_km": -1}]
)
def test_channel_rejects_bad_fields(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        channel(**bad)


def test_channel_free_slots_never_negative() -> None:
    assert channel(capacity=5, load=2).free == 3
    assert channel(capacity=5, load=9).free == 0


def test_haversine_matches_a_known_distance() -> None:
    # One degree of a great circle is 2 * pi * R / 360 = 111.195 km; Paris -> London is ~343.5 km.
    assert haversine_km((0.0, 0.0), (0.0, 1.0)) == pytest.approx(111.195, abs=0.001)
    assert haversine_km((48.8566, 2.3522), (51.5074, -0.1278)) == pytest.approx(343.5, abs=1.0)
    assert haversine_km((40.73, -73.99), (40.73, -73.99)) == 0.0


def test_eta_waits_for_the_later_of_food_and_courier_then_rides() -> None:
    c = channel(speed_kmh=15.0, pickup_latency_min=6.0)
    assert eta_seconds(3.0, None, c) == pytest.approx(6 * 60 + 3.0 / 15.0 * 3600)
    assert eta_seconds(3.0, 900.0, c) == pytest.approx(900 + 3.0 / 15.0 * 3600)
    assert dollars(3.0, c) == pytest.approx(3.0 + 0.6 * 3.0)


def test_score_weighs_dollars_minutes_and_lateness() -> None:
    c = channel(capacity=10, load=4)
    w = Weights(cost=0.5, time=0.3, quality=0.1, capacity=0.1)
    minutes = eta_seconds(2.0, 600.0, c) / 60
    expected = 0.5 * dollars(2.0, c) + 0.3 * minutes + 0.1 * 100 * 0.05 + 0.1 * 100 * 5 / 10
    assert score(2.0, 600.0, c, w) == pytest.approx(expected)


def test_cost_table_holds_the_scaled_scores_and_skips_infeasible_pairs() -> None:
    near, far_only = channel(id="near", radius_km=1.0), channel(id="far", radius_km=9.0)
    full = channel(id="full", capacity=2, load=2)
    delivery = Delivery("o1", (40.73, -73.99), (40.75, -73.99), 30.0, 300.0)
    d = haversine_km(delivery.pickup, delivery.dropoff)
    table = build_cost_table([delivery], [near, far_only, full], Weights(), 25.0)
    assert table.distances == [pytest.approx(d)]
    assert [j for j, _ in table.options[0]] == [1]  # out of radius and full channels are left out
    assert table.options[0][0][1] == pytest.approx(score(d, 300.0, far_only, Weights()) * SCALE, abs=1)
    assert table.fallback == [int((25.0 + 0.3 * 300 / 60) * SCALE)]  # penalty + the kitchen wait
    assert table.free == [10, 10, 0]


def test_the_cost_matrix_holds_the_same_integers_as_each_pair_scored_alone() -> None:
    rng = random.Random(7)
    channels = [
        channel(id=f"c{j}", radius_km=rng.uniform(1, 6), base_cost=rng.uniform(2, 8), load=rng.randint(0, 9))
        for j in range(6)
    ]
    deliveries = [
        Delivery(f"o{i}", (40.73, -73.99), (40.73 + rng.uniform(-0.05, 0.05), -73.99 + rng.uniform(-0.05, 0.05)), 0.0,
                 rng.choice([None, -60.0, rng.uniform(0, 1200)]))
        for i in range(60)
    ]  # fmt: skip
    w = Weights(cost=0.4, time=0.3, quality=0.2, capacity=0.1)
    table = build_cost_table(deliveries, channels, w, 25.0)
    terms = channel_terms(channels, w)
    for delivery, d, row, fallback in zip(deliveries, table.distances, table.options, table.fallback, strict=True):
        expected = [(t.channel, t.cost(d, t.eta(d, delivery.ready_at))) for t in terms if d <= t.radius_km]
        assert row == [(j, c) for j, c in expected if c < (fallback or 0) and channels[j].free > 0]
    rebuilt = CostTable(table.options, table.fallback, table.free, table.distances)
    assert (rebuilt.dense == table.dense).all()


def test_pairs_dearer_than_the_fallback_are_left_out() -> None:
    delivery = Delivery("o1", (40.73, -73.99), (40.75, -73.99))
    table = build_cost_table([delivery], [channel(radius_km=9.0)], Weights(), fallback_penalty=1.0)
    assert table.options == [[]]
