"""`uoom migrate up|down|status|new`: PostgreSQL schema, plus the DynamoDB table and Kafka topics."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import typer

from commands._confirm import YES_OPTION, confirm
from commands._context import current
from commands._output import EXIT_CODES, JSON_OPTION, ExitCode, command, emit_json, err, group, render

if TYPE_CHECKING:
    from commands._context import CliContext

app = group(
    "Schema migrations, the DynamoDB table and the Kafka topics.\n\n"
    f"Versioned plain-SQL files in uoom/migrations/.\n\n{EXIT_CODES}",
)


@app.command()
@command
async def up(
    schema_only: bool = typer.Option(False, "--schema-only", help="Skip the DynamoDB table and Kafka topics."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Apply pending migrations (each in its own transaction), then provision table and topics."""
    from uoom import migrate

    context = current()
    if schema_only:
        await context.check_postgres()
    else:
        await context.require("postgres", "dynamodb", "kafka")
    with err.status("applying migrations"):
        applied = await migrate.up(
            context.settings.database_url.get_secret_value(),
            lock_timeout_ms=context.settings.migrate_lock_timeout_ms,
        )
    provisioned: list[str] = []
    if not schema_only:
        from uoom.provision import provision

        with err.status("provisioning the DynamoDB table and the Kafka topics"):
            provisioned = await provision(context.settings)
    if as_json:
        emit_json({"applied": applied, "provisioned": provisioned})
        return
    for line in [*(f"applied {name}" for name in applied), *provisioned]:
        err.print(line)
    if not applied and not provisioned:
        err.print("up to date")


@app.command()
@command
async def down(
    steps: int = typer.Option(1, "--steps", min=1, help="How many migrations to undo."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be undone and dropped (on stdout)."),
    yes: bool = YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Undo the last applied migration(s), newest first, after saying what each drops.

    Every table the down sections drop (or truncate) is listed with its row count, unpublished
    outbox events named apart, before anything is undone; it asks first (--yes to skip, required
    without a terminal: exit 2 otherwise). --dry-run lists the same and changes nothing.
    """
    from uoom import migrate

    context = current()
    await context.check_postgres()
    dsn = context.settings.database_url.get_secret_value()
    plan = await migrate.plan_down(dsn, steps)
    names = [step.migration for step in plan]
    drops = [{"migration": s.migration, **asdict(d)} for s in plan for d in s.drops]
    lost = sum(d["rows"] for d in drops)
    whole = any(d["table"] == "outbox_events" and d["column"] is None for d in drops)
    unpublished = await _unpublished(context) if whole else 0
    summary = {"dry_run": dry_run, "migrations": names, "dropped": drops, "rows_lost": lost,
               "unpublished_events": unpublished}  # fmt: skip
    if dry_run or not plan:
        if as_json:
            emit_json({**summary, "undone": []})
        elif plan:
            render(drops, ("migration", "table", "column", "rows"), as_json=False, title="migrate down would drop")
        err.print(_loss_line(names, lost, unpublished) if plan else "nothing to undo")
        return
    losses = [_drop_line(d) for d in drops] + [_loss_line(names, lost, unpublished)]
    action = f"undo {', '.join(names)}" + (f" and lose {_rows(lost)}" if lost else " (its tables are empty)")
    confirm(action, yes, losses=losses, again=f"uoom migrate down --steps {steps}")
    undone = await migrate.down(dsn, steps, expected=names, lock_timeout_ms=context.settings.migrate_lock_timeout_ms)
    if as_json:
        emit_json({**summary, "undone": undone})
    else:
        err.print("\n".join(f"undone {n}" for n in undone))


async def _unpublished(context: CliContext) -> int:
    """Outbox events not yet published: dropping them means they never reach Kafka."""
    import asyncpg

    async with context.postgres() as conn:
        try:
            return int(await conn.fetchval("SELECT count(*) FROM outbox_events WHERE NOT processed"))
        except asyncpg.PostgresError:  # an older or newer shape of the table: its row count says enough
            return 0


def _drop_line(drop: dict[str, Any]) -> str:
    what = f"column {drop['table']}.{drop['column']}" if drop["column"] else f"table {drop['table']}"
    held = _rows(drop["rows"]) if drop["rows"] else "empty"
    return f"{drop['migration']} drops {what}: {held}"


def _loss_line(names: list[str], lost: int, unpublished: int) -> str:
    if not lost:
        return f"undoing {len(names)} migration(s) drops no data (the tables are empty)"
    events = f", {unpublished:,} of them outbox events never published to Kafka" if unpublished else ""
    return f"undoing {len(names)} migration(s) loses {_rows(lost)}{events}"


def _rows(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"


@app.command()
@command
async def status(as_json: bool = JSON_OPTION) -> None:
    """Each migration: applied (when), pending, edited after applying, or missing on disk.

    Exit 1 when a file was edited after it was applied or an applied one is missing.
    """
    from uoom import migrate

    context = current()
    await context.check_postgres()
    states = [asdict(s) for s in await migrate.status(context.settings.database_url.get_secret_value())]
    render(states, ("version", "name", "state", "applied_at"), as_json, title="migrations")
    if any(s["state"] in ("edited", "missing") for s in states):
        raise typer.Exit(ExitCode.PROBLEM)


@app.command()
@command
def new(name: str = typer.Argument(..., help="What the migration does, e.g. add_order_notes.")) -> None:
    """Create the next numbered migration file with empty up and down sections; print its path."""
    from uoom import migrate

    path = migrate.new(name)
    typer.echo(str(path))
