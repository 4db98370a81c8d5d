"""`uoom channels`: the registry (PostgreSQL), the weights and the live ranking (Redis)."""

from __future__ import annotations

from typing import Any

import typer

from commands._context import current
from commands._output import JSON_OPTION, command, emit_json, err, group, render, render_one

app = group("Delivery channels: registry, weights, live ranking.")
weights_app = group("Ranking and solve weights: cost, time, quality, capacity.")
app.add_typer(weights_app, name="weights")
COLUMNS = ("id", "kind", "capacity", "base_cost", "cost_per_km", "speed_kmh", "pickup_latency_min", "radius_km",
           "quality", "bundles", "enabled")  # fmt: skip
CHANNEL_ID = typer.Argument(..., help="The channel's id, e.g. partner-gamma (see `uoom channels list`).")
BUNDLES_HELP = "Its couriers may carry two orders of one restaurant on one trip (UOOM_BUNDLE_READY_WITHIN_S)."


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
    bundles: bool = typer.Option(False, "--bundles/--no-bundles", help=BUNDLES_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a channel (validated before anything is written). Exit 2 if invalid or taken."""
    from uoom import channels, rankings

    values = {"name": name, "kind": kind, "capacity": capacity, "base_cost": base_cost, "cost_per_km": cost_per_km,
              "speed_kmh": speed_kmh, "pickup_latency_min": pickup_latency_min, "radius_km": radius_km,
              "quality": quality, "bundles": bundles}  # fmt: skip
    channels.validate(values, channel_id)  # before connecting to anything
    async with current().stores() as (conn, redis):
        row = await channels.add(conn, channel_id, values)
        await rankings.republish(conn, redis)
    render_one(row, COLUMNS, as_json, title=f"channel {channel_id} added")


@app.command("set")
@command
async def set_(
    channel_id: str = CHANNEL_ID,
    changes: list[str] = typer.Argument(None, help="field=value, e.g. capacity=50 quality=0.95 enabled=false"),
    bundles: bool | None = typer.Option(None, "--bundles/--no-bundles", help=BUNDLES_HELP + " Unchanged if not given."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change fields of a channel (validated like `add`). Exit 2 if invalid or nothing to change."""
    from uoom import channels, rankings
    from uoom.errors import UsageError

    def as_bool(value: str) -> bool:
        return value.lower() in ("1", "true", "yes", "on")

    if not changes and bundles is None:
        raise UsageError("nothing to change: give field=value pairs and/or --bundles / --no-bundles")
    converters: dict[str, Any] = {"capacity": int, "enabled": as_bool, "bundles": as_bool, "name": str, "kind": str}
    typed: dict[str, Any] = {} if bundles is None else {"bundles": bundles}
    for field, value in _pairs(changes or []).items():
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


async def _set_weights(raw: dict[str, Any]) -> dict[str, Any]:
    """The one path that changes the weights (`weights set`, `weights tune --apply`): validated
    before connecting to anything, kept in PostgreSQL, served from Redis, the ranking republished."""
    from dataclasses import asdict

    from uoom import rankings
    from uoom.domain.channels import Weights
    from uoom.errors import UsageError

    try:
        Weights.from_mapping(raw)
    except ValueError as exc:
        raise UsageError(f"bad weights: {exc}") from None
    async with current().stores() as (conn, redis):
        return asdict(await rankings.apply_weights(conn, redis, raw))  # the dashboard's modal calls it too


@weights_app.command("set")
@command
async def weights_set(
    pairs: list[str] = typer.Argument(..., help="e.g. cost=0.4 time=0.3 quality=0.2 capacity=0.1"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set the weights (normalised to sum 1). Exit 2 if invalid.

    Numbers >= 0 for known criteria: cost, time, quality, capacity."""
    weights = await _set_weights(dict(_pairs(pairs)))
    render_one(weights, list(weights), as_json, title="weights set")
    if not as_json:
        err.print("the optimizer uses them from its next solve")


@weights_app.command("tune")
@command
async def weights_tune(
    candidate: list[str] = typer.Option(
        [],
        "--candidate",
        "-c",
        metavar="WEIGHTS",
        help="Weights to replay, e.g. cost=0.5,time=0.3,quality=0.2,capacity=0 (repeat it). Default: the "
        "weights in use and a small set (the day's defaults, cost only, cost-heavy, time-heavy, quality-heavy).",
    ),
    day: str = typer.Option(
        "synthetic",
        "--day",
        metavar="synthetic|FILE",
        help="The day to replay: 'synthetic' (the packaged synthetic day) or a day file.",
    ),
    hours: float | None = typer.Option(
        None,
        "--hours",
        metavar="N",
        help="Replay the last N hours of real orders from PostgreSQL instead, on the live registry.",
    ),
    policy: str | None = typer.Option(
        None,
        "--policy",
        metavar="at-once|rolling|in-time",
        help="at-once (dispatch() per order, trips and joins), rolling (+ re-optimization with fees) or "
        "in-time (orders held until near ready, then placed by the optimizer's rounds). "
        "Default: the setting dispatch_policy.",
    ),
    orders: int | None = typer.Option(
        None, "--orders", metavar="N", min=1, help="Replay only the first N orders (a quick look)."
    ),
    apply: str | None = typer.Option(
        None,
        "--apply",
        metavar="N|best",
        help="Then set candidate N (1-based, as numbered) or 'best' (as `weights set` would).",
    ),
    min_on_time: float = typer.Option(
        0.0,
        "--min-on-time",
        min=0.0,
        max=1.0,
        help="'best' = the lowest $ per delivered order among candidates on time at least this often (0..1).",
    ),
    no_plot: bool = typer.Option(False, "--no-plot", help="The table alone, no plot."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Replay a day under candidate weights, side by side: $ per delivered order (fees and penalties
    included), on-time rate, moves, trips formed, fees paid; a table and a plot. Progress on stderr.

    Exit 0 done, 1 no orders / a service down, 2 bad input."""
    import sys
    from dataclasses import asdict

    from commands import _tune
    from uoom.errors import UoomError, UsageError
    from uoom.replay import tune

    if hours is not None and day != "synthetic":
        raise UsageError("--day and --hours are two sources: give one")
    if hours is not None and not hours > 0:
        raise UsageError(f"--hours must be > 0, not {hours}")
    chosen_policy = policy or current().settings.dispatch_policy
    if chosen_policy not in tune.POLICIES:
        raise UsageError(f"--policy must be one of {', '.join(tune.POLICIES)}, not {chosen_policy!r}")
    try:
        for text in candidate:
            tune.parse_candidate(text)  # every candidate checked before anything is connected or replayed
    except ValueError as exc:
        raise UsageError(f"bad --candidate: {exc}") from None
    current_weights = await _current_weights() if not candidate else None
    chosen = tune.candidates(candidate, current_weights or tune.SUGGESTED[0][1])
    try:
        target = tune.apply_target(apply, len(chosen)) if apply is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    replay_day, source = await (_recent_day(hours, orders) if hours is not None else _file_day(day, orders))
    if not replay_day.orders:
        raise UoomError(f"no orders in the last {hours:g} hours: nothing to replay (try --day synthetic)")
    if not replay_day.channels:
        raise UoomError("no enabled channel to replay on; see `uoom channels list --all`")
    rows = _replay(replay_day, chosen, chosen_policy)
    best = tune.best(rows, min_on_time)
    applied = None
    if apply is not None:
        index = target if target is not None else best
        if index is None:
            raise UoomError(f"no candidate is on time at least {min_on_time:.1%} with sound books: nothing applied")
        applied = await _set_weights(asdict(chosen[index - 1].weights))  # unrounded
    if as_json:
        emit_json(_tune.document(source, chosen_policy, rows, best, applied))
        return
    render(_tune.table_rows(rows, best), _tune.COLUMNS, False, title=f"{source['name']}, policy {chosen_policy}",
           headers=_tune.HEADERS)  # fmt: skip
    if not no_plot:
        import shutil

        sys.stdout.write(_tune.plot(rows, shutil.get_terminal_size().columns, sys.stdout.isatty()) + "\n")
    if applied is not None:
        err.print(f"applied candidate {index}: {applied}; the optimizer uses them from its next solve")
    elif best is not None:
        err.print(
            f"* best: candidate {best} (lowest $ per delivered order); set one with `--apply N` or `--apply best`"
        )


async def _current_weights() -> Any:
    from uoom import rankings

    async with current().redis() as redis:
        return await rankings.get_weights(redis)


async def _file_day(which: str, limit: int | None) -> tuple[Any, dict[str, Any]]:
    """The synthetic day (or another day file): its seeded orders, channels, rules and penalty."""
    from pathlib import Path

    from uoom.errors import UsageError
    from uoom.replay.books import Rules
    from uoom.replay.day import SYNTHETIC_DAY, day_channels, generate, load
    from uoom.replay.tune import ReplayDay

    path = SYNTHETIC_DAY if which == "synthetic" else Path(which)
    try:
        spec = load(path)
        replay_day = ReplayDay(
            "synthetic day" if which == "synthetic" else path.name, generate(spec)[:limit], day_channels(spec),
            Rules.of_day(spec), float(spec["fallback_penalty"]),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--day: {which} is not 'synthetic' or a readable day file ({exc})") from None
    return replay_day, _source("day", replay_day, seed=spec.get("seed"))


async def _recent_day(hours: float, limit: int | None) -> tuple[Any, dict[str, Any]]:
    """The last `hours` of real orders, on the live registry and the settings' trip and fee rules."""
    from datetime import UTC, datetime, timedelta

    from uoom.replay.books import Rules
    from uoom.replay.tune import ReplayDay
    from uoom.stores.recent_orders import live_registry, recent_orders

    settings, now = current().settings, datetime.now(UTC)
    async with current().postgres() as conn:
        found = await recent_orders(conn, hours, now, limit)
        channels, bundling = await live_registry(conn)
    rules = Rules(bundling, settings.bundle_ready_within_s, settings.bundle_on_time_s, settings.reassign_fee_share)
    replay_day = ReplayDay(f"last {hours:g} h of orders", found, channels, rules, settings.fallback_penalty)
    window = {
        "from": (now - timedelta(hours=hours)).isoformat(timespec="seconds"),
        "to": now.isoformat(timespec="seconds"),
    }
    return replay_day, _source("hours", replay_day, hours=hours, **window)


def _source(kind: str, replay_day: Any, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "name": replay_day.name, **extra, "orders": len(replay_day.orders),
            "channels": [c.id for c in replay_day.channels],
            "bundling_channels": sorted(replay_day.rules.bundling)}  # fmt: skip


def _replay(replay_day: Any, chosen: list[Any], policy: str) -> list[dict[str, Any]]:
    """Every candidate replayed, a progress bar on stderr (a line per candidate when not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from uoom.replay import tune

    n = len(replay_day.orders)
    total = n * len(chosen)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err.console, transient=True, disable=not err.console.is_terminal) as bar:  # fmt: skip
        task = bar.add_task("replaying", total=total)
        seen = [-1]

        def progress(k: int, c: Any, done: int) -> None:
            if done % 50 == 0 or done == n:
                bar.update(task, completed=k * n + done, description=f"{k + 1}/{len(chosen)} {c.label}")
            if k != seen[0] and not err.console.is_terminal:
                seen[0] = k
                err.print(f"replaying candidate {k + 1}/{len(chosen)} ({c.label}) on {n} orders, policy {policy}")

        return tune.run(replay_day, chosen, policy, progress)
