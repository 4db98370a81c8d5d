"""`uoom channels`: the registry (PostgreSQL), the weights and the live ranking (Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import typer

from commands._output import JSON_OPTION, command, emit_json, err

app = typer.Typer(help="Delivery channels: registry, weights, live ranking.", no_args_is_help=True)
weights_app = typer.Typer(help="Ranking and solve weights: cost, time, quality, capacity.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")
COLUMNS = (
    "id",
    "kind",
    "capacity",
    "base_cost",
    "cost_per_km",
    "speed_kmh",
    "pickup_latency_min",
    "radius_km",
    "quality",
    "enabled",
)


@asynccontextmanager
async def _services() -> AsyncIterator[tuple[Any, Any]]:
    import asyncpg
    import redis.asyncio as aioredis

    from uoom.config import Settings

    settings = Settings()
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    redis = aioredis.from_url(settings.redis_url.get_secret_value(), socket_connect_timeout=2)
    try:
        yield conn, redis
    finally:
        await conn.close()
        await redis.aclose()


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...], title: str) -> None:
    from rich.table import Table

    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    err.print(table)


def _pairs(items: list[str]) -> dict[str, str]:
    from uoom.errors import UsageError

    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"'{item}' is not name=value")
        pairs[name.strip()] = value.strip()
    return pairs


async def _republish(conn: Any, redis: Any) -> None:
    from dataclasses import replace

    from uoom import channels, rankings

    loads = await rankings.loads(redis)
    live = [replace(c, load=loads.get(c.id, 0)) for c in await channels.enabled(conn)]
    await rankings.refresh(redis, live, await rankings.get_weights(redis))


@app.command("list")
@command
async def list_(
    all_: bool = typer.Option(False, "--all", help="Include disabled channels."), as_json: bool = JSON_OPTION
) -> None:
    """The registered channels."""
    from uoom import channels

    async with _services() as (conn, _):
        rows = await channels.list_channels(conn, enabled_only=not all_)
    emit_json(rows) if as_json else _table(rows, COLUMNS, "channels")


@app.command()
@command
async def show(channel_id: str, as_json: bool = JSON_OPTION) -> None:
    """One channel with its live load."""
    from uoom import channels, rankings

    async with _services() as (conn, redis):
        row = await channels.get(conn, channel_id)
        row["load"] = (await rankings.loads(redis)).get(channel_id, 0)
    emit_json(row) if as_json else _table([row], (*COLUMNS, "load"), channel_id)


@app.command()
@command
async def add(
    channel_id: str = typer.Argument(..., help="Lower-case id, e.g. partner-gamma."),
    name: str = typer.Option(..., "--name"),
    kind: str = typer.Option(..., "--kind", help="own_fleet, partner or restaurant."),
    capacity: int = typer.Option(..., "--capacity", help="Concurrent orders."),
    base_cost: float = typer.Option(..., "--base-cost", help="Dollars per order."),
    cost_per_km: float = typer.Option(..., "--cost-per-km"),
    speed_kmh: float = typer.Option(..., "--speed-kmh"),
    pickup_latency_min: float = typer.Option(..., "--pickup-latency-min"),
    radius_km: float = typer.Option(..., "--radius-km", help="Longest pickup -> dropoff distance."),
    quality: float = typer.Option(..., "--quality", help="On-time rate, 0..1."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a channel."""
    from uoom import channels

    values = {
        "name": name,
        "kind": kind,
        "capacity": capacity,
        "base_cost": base_cost,
        "cost_per_km": cost_per_km,
        "speed_kmh": speed_kmh,
        "pickup_latency_min": pickup_latency_min,
        "radius_km": radius_km,
        "quality": quality,
    }
    async with _services() as (conn, redis):
        row = await channels.add(conn, channel_id, values)
        await _republish(conn, redis)
    emit_json(row) if as_json else err.print(f"channel {channel_id} added")


@app.command("set")
@command
async def set_(
    channel_id: str,
    changes: list[str] = typer.Argument(..., help="field=value, e.g. capacity=50"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change fields of a channel (validated like `add`)."""
    from uoom import channels
    from uoom.errors import UsageError

    raw = _pairs(changes)

    def as_bool(value: str) -> bool:
        return value.lower() in ("1", "true", "yes")

    converters: dict[str, Any] = {"capacity": int, "enabled": as_bool, "name": str, "kind": str}
    typed: dict[str, Any] = {}
    for field, value in raw.items():
        if field not in channels.FIELDS and field != "enabled":
            typed[field] = value  # refused by channels.update, which names the known fields
            continue
        try:
            typed[field] = converters.get(field, float)(value)
        except ValueError:
            raise UsageError(f"{field}={value!r} is not a valid value") from None
    async with _services() as (conn, redis):
        row = await channels.update(conn, channel_id, typed)
        await _republish(conn, redis)
    emit_json(row) if as_json else err.print(f"channel {channel_id} updated")


@app.command()
@command
async def disable(channel_id: str, as_json: bool = JSON_OPTION) -> None:
    """Stop assigning new orders to a channel (orders it holds keep it)."""
    from uoom import channels

    async with _services() as (conn, redis):
        row = await channels.update(conn, channel_id, {"enabled": False})
        await _republish(conn, redis)
    emit_json(row) if as_json else err.print(f"channel {channel_id} disabled")


@app.command()
@command
async def rank(
    top: int = typer.Option(0, "--top", min=0, help="Only the best N (0: all)."), as_json: bool = JSON_OPTION
) -> None:
    """The live composite ranking (refreshed now from the registry, loads and weights)."""
    from uoom import rankings

    async with _services() as (conn, redis):
        await _republish(conn, redis)
        rows = await rankings.ranking(redis, top or -1)
    emit_json(rows) if as_json else _table(
        rows, ("channelId", "score", "cost", "latency", "quality", "capacity"), "composite ranking (higher is better)"
    )


@weights_app.command("get")
@command
async def weights_get(as_json: bool = JSON_OPTION) -> None:
    """The weights in use (defaults until set)."""
    from dataclasses import asdict

    from uoom import rankings

    async with _services() as (_, redis):
        weights = asdict(await rankings.get_weights(redis))
    emit_json(weights) if as_json else err.print("  ".join(f"{k}={v:.3f}" for k, v in weights.items()))


@weights_app.command("set")
@command
async def weights_set(
    pairs: list[str] = typer.Argument(..., help="e.g. cost=0.4 time=0.3 quality=0.2 capacity=0.1"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set the weights: numbers >= 0 for known criteria, normalised to sum 1. Exit 2 if invalid."""
    from dataclasses import asdict

    from uoom import rankings
    from uoom.errors import UsageError

    raw = _pairs(pairs)
    try:
        from uoom.assignment import Weights

        Weights.from_mapping(raw)  # validate before touching Redis
    except ValueError as exc:
        raise UsageError(f"bad weights: {exc}") from None
    async with _services() as (conn, redis):
        weights = asdict(await rankings.set_weights(redis, raw))
        await _republish(conn, redis)
    emit_json(weights) if as_json else err.print(
        "weights set: " + "  ".join(f"{k}={v:.3f}" for k, v in weights.items())
    )
