"""One guard for every command that destroys data (`migrate down`, `outbox prune` with no
retention, `keys revoke`, `stack down`, `dlq purge`): say what would be lost, then ask.

`--yes` skips the question (what would be lost is printed all the same). With no terminal to ask
on and no `--yes`, the command refuses with exit 2 (a usage error: a script must say `--yes`) and
one line naming the flag, so a script never hangs on a prompt nobody answers. Answering no
changes nothing and exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from commands._output import ExitCode, err, fail

YES_OPTION = typer.Option(
    False, "--yes", "-y", help="Do it without asking; required when no terminal can answer the question."
)


def interactive() -> bool:
    """Whether someone can answer: stdin (read) and stderr (where the question goes) are terminals."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def confirm(action: str, yes: bool, *, losses: Sequence[str] = (), again: str = "") -> None:
    """Print `losses` on stderr, one line each, then ask "`action`?"; return when it may go on.

    `action` reads after "refused to": `undo 0001_orders_and_outbox.sql`. `again` is the command
    line to repeat with `--yes`, named in the refusal: `uoom keys revoke ci`.
    """
    import click

    for line in losses:
        err.print(f"  {line}")
    if yes:
        return
    if not interactive():
        rerun = f": run `{again} --yes`" if again else ": add --yes"
        raise fail(f"refused to {action} without --yes (no terminal to ask on){rerun}", ExitCode.USAGE)
    try:
        agreed = typer.confirm(f"{action[:1].upper()}{action[1:]}?", default=False, err=True)
    except click.exceptions.Abort:  # Ctrl-C or end of input at the prompt
        agreed = False
    if not agreed:
        raise fail("nothing changed (not confirmed)", ExitCode.PROBLEM)
