"""`uoom outbox status|prune`: the transactional outbox behind the relay."""

from __future__ import annotations

from typing import Any

import typer

from commands._output import JSON_OPTION, ExitCode, command, emit_json, err

app = typer.Typer(
    help="The outbox: backlog, lag, retries, dead letters, retention.\n\n"
    "Exit codes: 0 ok, 1 a problem found or an operation failed, 2 a usage error.",
    no_args_is_help=True,
)


async def _connect() -> Any:
    import asyncpg

    from uoom.config import Settings

    return await asyncpg.connect(Settings().database_url.get_secret_value(), timeout=10)


@app.command()
@command
async def status(
    max_lag: float | None = typer.Option(
        None, "--max-lag", min=0, help="Exit 1 when the oldest unpublished event is older (seconds)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Pending events, lag (age of the oldest unpublished one), retries, backoff, dead letters."""
    from uoom.relay_outbox import outbox_status

    conn = await _connect()
    try:
        state = await outbox_status(conn)
    finally:
        await conn.close()
    if as_json:
        emit_json(state.as_json())
    else:
        from rich.table import Table

        table = Table("pending", "lag", "retrying", "in backoff", "dead letters (open)", "last published")
        table.add_row(
            str(state.pending),
            f"{state.lag_seconds:.1f} s",
            str(state.retrying),
            str(state.in_backoff),
            f"{state.dead_letters} ({state.dead_letters_open})",
            str(state.last_published_at or "-"),
        )
        err.print(table)
    if max_lag is not None and state.lag_seconds > max_lag:
        err.print(f"lag {state.lag_seconds:.1f} s is over {max_lag:g} s: is `uoom relay` running?")
        raise typer.Exit(ExitCode.PROBLEM)


@app.command()
@command
async def prune(
    older_than: str | None = typer.Option(
        None, "--older-than", help="Age of published rows to delete, e.g. 7d, 12h (default UOOM_OUTBOX_RETENTION)."
    ),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, help="Rows deleted per statement."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be deleted."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete published outbox rows older than the retention, in small batches. Unpublished
    rows are never deleted, however old."""
    from pydantic import TypeAdapter, ValidationError

    from uoom import relay_outbox
    from uoom.config import Duration, Settings
    from uoom.errors import UsageError

    age = Settings().outbox_retention
    if older_than is not None:
        try:
            age = TypeAdapter(Duration).validate_python(older_than)
        except ValidationError:
            raise UsageError(f"--older-than {older_than!r}: use e.g. 7d, 12h, 30m, 3600 or P7D") from None
    conn = await _connect()
    try:
        if dry_run:
            count = await relay_outbox.prunable(conn, age)
        else:
            count = await relay_outbox.prune(conn, age, batch_size)
    finally:
        await conn.close()
    if as_json:
        emit_json(
            {
                "deleted": 0 if dry_run else count,
                "wouldDelete": count if dry_run else None,
                "olderThanSeconds": age.total_seconds(),
            }
        )
    else:
        err.print(f"{'would delete' if dry_run else 'deleted'} {count} published rows older than {age}")
