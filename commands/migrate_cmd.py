"""`uoom migrate up|down|status|new`: PostgreSQL schema, plus the DynamoDB table and Kafka topics."""

from __future__ import annotations

import typer

from commands._context import current
from commands._output import EXIT_CODES, JSON_OPTION, ExitCode, command, emit_json, err, group, render

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
        applied = await migrate.up(context.settings.database_url.get_secret_value())
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
    as_json: bool = JSON_OPTION,
) -> None:
    """Undo the last applied migration(s), newest first."""
    from uoom import migrate

    context = current()
    await context.check_postgres()
    undone = await migrate.down(context.settings.database_url.get_secret_value(), steps)
    if as_json:
        emit_json({"undone": undone})
    else:
        err.print("\n".join(f"undone {n}" for n in undone) or "nothing to undo")


@app.command()
@command
async def status(as_json: bool = JSON_OPTION) -> None:
    """Each migration: applied (when), pending, edited after applying, or missing on disk.

    Exit 1 when a file was edited after it was applied or an applied one is missing.
    """
    from dataclasses import asdict

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
