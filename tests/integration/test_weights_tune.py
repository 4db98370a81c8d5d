"""`uoom channels weights tune` on real orders: the last hours of a scratch PostgreSQL database, the
live registry, and `--apply` through the same path as `weights set` (its own Redis database)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from typer.testing import CliRunner

from commands.main import app
from uoom import migrate
from uoom.config import Settings

runner = CliRunner()
KITCHEN, DINER = uuid.uuid4(), uuid.uuid4()
CHANNELS = [  # id, kind, capacity, base, per km, speed, latency, radius, quality, bundles, enabled
    ("bikes", "own_fleet", 10, 3.0, 0.6, 15.0, 6.0, 6.0, 0.95, True, True),
    ("partner", "partner", 10, 5.0, 0.9, 25.0, 5.0, 12.0, 0.97, False, True),
    ("retired", "partner", 10, 1.0, 0.1, 25.0, 5.0, 12.0, 0.99, False, False),
]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


@pytest.fixture
async def shop(scratch_dsn: str, private_redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A scratch database with two restaurants, the channels, and one order three hours old."""
    await migrate.up(scratch_dsn)
    monkeypatch.setenv("UOOM_DATABASE_URL", scratch_dsn)
    monkeypatch.setenv("UOOM_REDIS_URL", private_redis_url)
    conn = await asyncpg.connect(scratch_dsn)
    try:
        await conn.executemany(
            "INSERT INTO restaurants (id, name, latitude, longitude, prep_minutes) VALUES ($1, $2, $3, $4, $5)",
            [(KITCHEN, "kitchen", 40.7300, -73.9900, 12), (DINER, "diner", 40.7450, -73.9800, 20)],
        )
        await conn.executemany(
            """INSERT INTO channels (id, name, kind, capacity, base_cost, cost_per_km, speed_kmh,
                                     pickup_latency_min, radius_km, quality, bundles, enabled)
               VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
            CHANNELS,
        )
        await add_order(conn, DINER, 180, 2.0)  # outside a one-hour window
    finally:
        await conn.close()
    return scratch_dsn


@pytest.fixture
async def busy_hour(shop: str) -> str:
    """Ten orders in the last hour: pairs one minute apart at the kitchen, so joins are possible."""
    conn = await asyncpg.connect(shop)
    try:
        for k in range(5):
            await add_order(conn, KITCHEN, 50 - 10 * k, 1.0 + 0.2 * k)
            await add_order(conn, KITCHEN, 49 - 10 * k, 1.2 + 0.2 * k)
    finally:
        await conn.close()
    return shop


async def add_order(conn: asyncpg.Connection, restaurant: uuid.UUID, minutes_ago: float, north_km: float) -> None:
    drop = {"street": "1 Main St", "city": "New York", "postalCode": "10001",
            "latitude": 40.7300 + north_km / 111.32, "longitude": -73.9850}  # fmt: skip
    await conn.execute(
        """INSERT INTO orders (id, customer_id, restaurant_id, items, delivery_location, total, created_at)
           VALUES ($1, $2, $3, '[]'::jsonb, $4::text::jsonb, 30.00, $5)""",
        uuid.uuid4(),
        uuid.uuid4(),
        restaurant,
        json.dumps(drop),
        datetime.now(UTC) - timedelta(minutes=minutes_ago),
    )


def tune(*args: str) -> dict:  # type: ignore[type-arg]
    result = invoke("channels", "weights", "tune", "--hours", "1", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_hours_replays_the_windows_orders_on_the_live_registry(busy_hour: str) -> None:
    document = tune("-c", "cost=1", "-c", "time=1")
    source = document["source"]
    assert (source["kind"], source["orders"], source["hours"]) == ("hours", 10, 1.0)
    start, end = datetime.fromisoformat(source["from"]), datetime.fromisoformat(source["to"])
    assert end - start == timedelta(hours=1) and abs(datetime.now(UTC) - end) < timedelta(minutes=5)
    assert (source["channels"], source["bundlingChannels"]) == (["bikes", "partner"], ["bikes"])
    assert document["policy"] == Settings().dispatch_policy  # the setting's value, as no --policy
    cheap, fast = document["candidates"]
    assert [cheap["label"], fast["label"]] == ["cost=1", "time=1"]
    for row in (cheap, fast):
        assert row["delivered"] + row["fallbacks"] == 10 and row["booksFaults"] == 0
        assert row["dollarsPerDeliveredOrder"] >= row["dollarsPerDeliveredOrderTripsAndFees"] > 0
    assert cheap["tripsFormed"] >= 1  # the kitchen's pairs ride together on the bundling bikes
    assert cheap["dollarsPerDeliveredOrder"] < fast["dollarsPerDeliveredOrder"]
    assert document["best"] == 1 and document["applied"] is None


def test_apply_sets_the_candidate_that_weights_get_then_shows(busy_hour: str) -> None:
    document = tune("-c", "cost=1", "-c", "cost=0.2,time=0.8", "--apply", "2")
    assert document["applied"] == {"cost": 0.2, "time": 0.8, "quality": 0.0, "capacity": 0.0}
    shown = invoke("channels", "weights", "get", "--json")
    assert json.loads(shown.stdout) == document["applied"]
    kept = json.loads(asyncio.run(stored_weights(busy_hour)))
    assert kept == document["applied"]  # kept in PostgreSQL too, as `weights set` does
    best = tune("-c", "cost=0.2,time=0.8", "-c", "cost=1", "--apply", "best")
    assert best["best"] == 2 and best["applied"]["cost"] == 1.0
    assert json.loads(invoke("channels", "weights", "get", "--json").stdout)["cost"] == 1.0


def test_the_default_candidates_start_with_the_weights_in_use(busy_hour: str) -> None:
    assert invoke("channels", "weights", "set", "cost=0.6", "time=0.4").exit_code == 0
    labels = [(c["label"], c["weights"]["cost"]) for c in tune("--no-plot")["candidates"]]
    assert labels[0] == ("current", 0.6)
    assert [name for name, _ in labels[1:]] == ["day defaults", "cost only", "cost-heavy", "time-heavy",
                                                 "quality-heavy"]  # fmt: skip


def test_hours_without_orders_is_one_line_and_exit_1(shop: str) -> None:
    result = invoke("channels", "weights", "tune", "--hours", "1", "-c", "cost=1")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == ("error: no orders in the last 1 hours: nothing to replay (try --day synthetic)")
    assert invoke("channels", "weights", "get", "--json").exit_code == 0


async def stored_weights(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SELECT weights::text FROM ranking_weights"))
    finally:
        await conn.close()


def test_the_replays_ranking_is_the_one_redis_serves(shop: str) -> None:
    """An order the optimizer leaves goes to the ranking's best channel in the replay as in the API:
    the pure ranking orders the channels as Redis' composite does."""
    from uoom.channels import to_channel
    from uoom.domain.channels import Weights
    from uoom.domain.ranking import ranked

    enabled = [
        to_channel({"id": i, "name": i, "kind": k, "capacity": n, "base_cost": b, "cost_per_km": p, "speed_kmh": v,
                    "pickup_latency_min": lat, "radius_km": r, "quality": q})
        for i, k, n, b, p, v, lat, r, q, _, on in CHANNELS
        if on
    ]  # fmt: skip
    for pairs in (["cost=1"], ["time=1"], ["quality=0.7", "capacity=0.3"]):
        assert invoke("channels", "weights", "set", *pairs).exit_code == 0
        served = [r["channelId"] for r in json.loads(invoke("channels", "rank", "--json").stdout)]
        weights = Weights.from_mapping(dict(p.split("=") for p in pairs))
        assert served == [c.id for c in ranked(enabled, weights)], pairs
