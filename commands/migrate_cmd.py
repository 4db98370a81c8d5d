"""`uoom migrate up|down|status|new`: PostgreSQL schema, plus the DynamoDB table and Kafka topics."""

from __future__ import annotations

import typer

from commands._output import JSON_OPTION, ExitCode, command, emit_json, err

app = typer.Typer(help="Versioned plain-SQL migrations (migrations/) and provisioning.", no_args_is_help=True)


def _dsn() -> str:
    from uoom.config import Settings

    return Settings().database_url.get_secret_value()


@app.command()
@command
async def up(
    schema_only: bool = typer.Option(False, "--schema-only", help="Skip the DynamoDB table and Kafka topics."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Apply pending migrations (each in its own transaction), then provision table and topics."""
    from uoom import migrate
    from uoom.config import Settings

    applied = await migrate.up(_dsn())
    provisioned: list[str] = []
    if not schema_only:
        from uoom.provision import provision

        provisioned = await provision(Settings())
    if as_json:
        emit_json({"applied": applied, "provisioned": provisioned})
        return
    for name in applied:
        err.print(f"applied {name}")
    for line in provisioned:
        err.print(line)
    if not applied and not provisioned:
        err.print("up to date")


@app.command()
@command
async def down(
    steps: int = typer.Option(1, "--steps", min=1, help="How many migrations to undo."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Undo the last applied migration(s), newest first."""
    from uoom import migrate

    undone = await migrate.down(_dsn(), steps)
    if as_json:
        emit_json({"undone": undone})
    else:
        err.print("\n".join(f"undone {n}" for n in undone) or "nothing to undo")


@app.command()
@command
async def status(as_json: bool = JSON_OPTION) -> None:
    """Each migration: applied (when), pending, edited after applying, or missing on disk."""
    from uoom import migrate

    states = await migrate.status(_dsn())
    if as_json:
        emit_json([s.__dict__ for s in states])
    else:
        from rich.table import Table

        table = Table("version", "name", "state", "applied at")
        colours = {"applied": "green", "pending": "yellow"}
        for s in states:
            colour = colours.get(s.state, "red")
            table.add_row(s.version, s.name, f"[{colour}]{s.state}[/]", str(s.applied_at or ""))
        err.print(table)
    if any(s.state in ("edited", "missing") for s in states):
        raise typer.Exit(ExitCode.PROBLEM)


@app.command()
@command
def new(name: str = typer.Argument(..., help="What the migration does, e.g. add_order_notes.")) -> None:
    """Create the next numbered migration file with empty up and down sections."""
    from uoom import migrate

    path = migrate.new(name)
    typer.echo(str(path))
