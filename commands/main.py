"""The root `uoom` app. Sub-apps import their heavy libraries inside each command."""

from __future__ import annotations

import typer

from commands import (
    channels_cmd,
    config_cmd,
    keys_cmd,
    migrate_cmd,
    optimizer_cmd,
    outbox_cmd,
    relay_cmd,
    seed_cmd,
    serve_cmd,
    stack_cmd,
    up_cmd,
)

app = typer.Typer(
    name="uoom",
    help=(
        "Operator toolkit of the uoom order platform.\n\n"
        "Exit codes: 0 ok, 1 a problem found or an operation failed, 2 a usage error."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(stack_cmd.app, name="stack")
app.add_typer(migrate_cmd.app, name="migrate")
app.add_typer(seed_cmd.app, name="seed")
app.command("config")(config_cmd.show_config)
app.command("up")(up_cmd.up)
app.command("serve")(serve_cmd.serve)
app.add_typer(keys_cmd.app, name="keys")
app.command("relay")(relay_cmd.relay)
app.add_typer(outbox_cmd.app, name="outbox")
app.command("optimizer")(optimizer_cmd.optimizer)
app.add_typer(channels_cmd.app, name="channels")


def main() -> None:
    app(prog_name="uoom")
