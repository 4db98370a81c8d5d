"""`uoom outbox status|prune`: the transactional outbox behind the relay."""

from __future__ import annotations

import typer

from commands._confirm import YES_OPTION, confirm
from commands._context import current
from commands._output import EXIT_CODES, JSON_OPTION, ExitCode, command, emit_json, err, group, render

app = group(f"The outbox: backlog, lag, retries, dead letters, retention.\n\n{EXIT_CODES}")
COLUMNS = ("pending", "lag", "retrying", "in_backoff", "dead_letters", "dead_letters_open", "last_published_at")


@app.command()
@command
async def status(
    max_lag: float | None = typer.Option(
        None, "--max-lag", min=0, help="Exit 1 when the oldest unpublished event is older (seconds)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Pending events, lag (age of the oldest unpublished one), retries, backoff, dead letters."""
    from dataclasses import asdict

    from uoom.stores import outbox

    async with current().postgres() as conn:
        state = await outbox.status(conn)
    if as_json:
        emit_json(state.as_json())
    else:
        row = {**asdict(state), "lag": f"{state.lag_seconds:.1f} s"}
        render([row], COLUMNS, as_json=False, title="outbox", headers={"dead_letters_open": "open"})
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
    yes: bool = YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete published outbox rows older than the retention, in small batches. Unpublished
    rows are never deleted, however old.

    A retention of zero or less keeps no published row at all, not even those published a moment
    ago: it asks first (--yes to skip, required without a terminal: exit 2 otherwise).
    """
    from pydantic import TypeAdapter, ValidationError

    from uoom.config import Duration
    from uoom.errors import UsageError
    from uoom.stores import outbox

    age = current().settings.outbox_retention
    if older_than is not None:
        try:
            age = TypeAdapter(Duration).validate_python(older_than)
        except ValidationError:
            raise UsageError(f"--older-than {older_than!r}: use e.g. 7d, 12h, 30m, 3600 or P7D") from None
    async with current().postgres() as conn:
        if age.total_seconds() <= 0 and not dry_run:
            doomed = await outbox.prunable(conn, age)
            confirm(
                f"delete all {doomed:,} published outbox rows",
                yes,
                losses=[f"a retention of {age.total_seconds():g} s keeps no published row, not even those "
                        "published a moment ago; unpublished rows are kept"],
                again=f"uoom outbox prune --older-than {older_than or '0'}",
            )  # fmt: skip
        count = await (outbox.prunable(conn, age) if dry_run else outbox.prune(conn, age, batch_size))
    if as_json:
        emit_json({"deleted": 0 if dry_run else count, "wouldDelete": count if dry_run else None,
                   "olderThanSeconds": age.total_seconds()})  # fmt: skip
    else:
        err.print(f"{'would delete' if dry_run else 'deleted'} {count} published rows older than {age}")
