"""`uoom channels`: the registry (PostgreSQL), the weights and the live ranking (Redis)."""

from __future__ import annotations

from typing import Any

import typer

from commands._context import current
from commands._output import JSON_OPTION, command, err, group, render, render_one

app = group("Delivery channels: registry, weights, live ranking.")
weights_app = group("Ranking and solve weights: cost, time, quality, capacity.")
app.add_typer(weights_app, name="weights")
COLUMNS = ("id", "kind", "capacity", "base_cost", "cost_per_km", "speed_kmh", "pickup_latency_min", "radius_km",
           "quality", "enabled")  # fmt: skip
CHANNEL_ID = typer.Argument(..., help="The channel's id, e.g. partner-gamma (see `uoom channels list`).")


def _pairs(items: list[str]) -> dict[str, str]:
    from uoom.errors import UsageError

    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"'{item}' is not name=value")
        pairs[name.strip()] = value.strip()
    return pairs


@app.command("list")
@command
async def list_(
    all_: bool = typer.Option(False, "--all", help="Include disabled channels."), as_json: bool = JSON_OPTION
) -> None:
    """The registered channels (enabled ones unless --all)."""
    from uoom import channels

    async with current().postgres() as conn:
        rows = await channels.list_channels(conn, enabled_only=not all_)
    render(rows, COLUMNS, as_json, title="channels")


@app.command()
@command
async def show(channel_id: str = CHANNEL_ID, as_json: bool = JSON_OPTION) -> None:
    """One channel with its live load."""
    from uoom import channels, rankings

    async with current().stores() as (conn, redis):
        row = await channels.get(conn, channel_id)
        row["load"] = (await rankings.channel_loads(redis)).get(channel_id, 0)
    render_one(row, (*COLUMNS, "load"), as_json, title=channel_id)


@app.command()
@command
async def add(
    channel_id: str = typer.Argument(..., help="Lower-case id, e.g. partner-gamma."),
    name: str = typer.Option(..., "--name", help="Display name, e.g. 'Partner Gamma'."),
    kind: str = typer.Option(..., "--kind", help="own_fleet, partner or restaurant."),
    capacity: int = typer.Option(..., "--capacity", help="Concurrent orders."),
    base_cost: float = typer.Option(..., "--base-cost", help="Dollars per order."),
    cost_per_km: float = typer.Option(..., "--cost-per-km", help="Dollars per km of pickup -> dropoff."),
    speed_kmh: float = typer.Option(..., "--speed-kmh", help="Average travel speed, km/h."),
    pickup_latency_min: float = typer.Option(..., "--pickup-latency-min", help="Minutes until a courier picks up."),
    radius_km: float = typer.Option(..., "--radius-km", help="Longest pickup -> dropoff distance."),
    quality: float = typer.Option(..., "--quality", help="On-time rate, 0..1."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a channel (validated before anything is written). Exit 2 if invalid or taken."""
    from uoom import channels, rankings

    values = {"name": name, "kind": kind, "capacity": capacity, "base_cost": base_cost, "cost_per_km": cost_per_km,
              "speed_kmh": speed_kmh, "pickup_latency_min": pickup_latency_min, "radius_km": radius_km,
              "quality": quality}  # fmt: skip
    channels.validate(values, channel_id)  # before connecting to anything
    async with current().stores() as (conn, redis):
        row = await channels.add(conn, channel_id, values)
        await rankings.republish(conn, redis)
    render_one(row, COLUMNS, as_json, title=f"channel {channel_id} added")


@app.command("set")
@command
async def set_(
    channel_id: str = CHANNEL_ID,
    changes: list[str] = typer.Argument(..., help="field=value, e.g. capacity=50 quality=0.95 enabled=false"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change fields of a channel (validated like `add`). Exit 2 if invalid."""
    from uoom import channels, rankings
    from uoom.errors import UsageError

    def as_bool(value: str) -> bool:
        return value.lower() in ("1", "true", "yes", "on")

    converters: dict[str, Any] = {"capacity": int, "enabled": as_bool, "name": str, "kind": str}
    typed: dict[str, Any] = {}
    for field, value in _pairs(changes).items():
        if field not in channels.FIELDS and field != "enabled":
            raise UsageError(f"unknown field(s) {field}; known: {', '.join(channels.FIELDS)}, enabled")
        try:
            typed[field] = converters.get(field, float)(value)
        except ValueError:
            raise UsageError(f"{field}={value!r} is not a valid value") from None
    async with current().stores() as (conn, redis):
        row = await channels.update(conn, channel_id, typed)
        await rankings.republish(conn, redis)
    render_one(row, COLUMNS, as_json, title=f"channel {channel_id} updated")


@app.command()
@command
async def disable(channel_id: str = CHANNEL_ID, as_json: bool = JSON_OPTION) -> None:
    """Stop assigning new orders to a channel (orders it holds keep it)."""
    from uoom import channels, rankings

    async with current().stores() as (conn, redis):
        row = await channels.update(conn, channel_id, {"enabled": False})
        await rankings.republish(conn, redis)
    render_one(row, COLUMNS, as_json, title=f"channel {channel_id} disabled")


@app.command()
@command
async def rank(
    top: int = typer.Option(0, "--top", min=0, help="Only the best N (0: all)."), as_json: bool = JSON_OPTION
) -> None:
    """The live composite ranking, refreshed now.

    Built from the registry, the live loads and the weights."""
    from uoom import rankings

    async with current().stores() as (conn, redis):
        await rankings.republish(conn, redis)
        rows = await rankings.ranking(redis, top or -1)
    columns = ("channelId", "score", "cost", "latency", "quality", "capacity")
    render(rows, columns, as_json, title="composite ranking (higher is better)", headers={"channelId": "channel"})


@weights_app.command("get")
@command
async def weights_get(as_json: bool = JSON_OPTION) -> None:
    """The weights in use (defaults until set)."""
    from dataclasses import asdict

    from uoom import rankings

    async with current().redis() as redis:
        weights = asdict(await rankings.get_weights(redis))
    render_one(weights, list(weights), as_json, title="weights")


@weights_app.command("set")
@command
async def weights_set(
    pairs: list[str] = typer.Argument(..., help="e.g. cost=0.4 time=0.3 quality=0.2 capacity=0.1"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set the weights (normalised to sum 1). Exit 2 if invalid.

    Numbers >= 0 for known criteria: cost, time, quality, capacity."""
    from dataclasses import asdict

    from uoom import rankings
    from uoom.domain.channels import Weights
    from uoom.errors import UsageError

    raw = _pairs(pairs)
    try:
        Weights.from_mapping(raw)  # validate before connecting to anything
    except ValueError as exc:
        raise UsageError(f"bad weights: {exc}") from None
    async with current().stores() as (conn, redis):
        weights = asdict(await rankings.apply_weights(conn, redis, raw))  # the dashboard's modal calls it too
    render_one(weights, list(weights), as_json, title="weights set")
    if not as_json:
        err.print("the optimizer uses them from its next solve")
