"""The root `uoom` app. Sub-apps import their heavy libraries inside each command, so `uoom --help`
imports typer and the command modules only (tests/unit/test_cli_imports.py keeps it so)."""

from __future__ import annotations

import typer

from commands import (
    bench_cmd,
    channels_cmd,
    config_cmd,
    dash_cmd,
    dax_cmd,
    dlq_cmd,
    doctor_cmd,
    keys_cmd,
    metrics_cmd,
    migrate_cmd,
    optimizer_cmd,
    outbox_cmd,
    relay_cmd,
    seed_cmd,
    serve_cmd,
    stack_cmd,
    up_cmd,
)
from commands._context import start
from commands._output import EXIT_CODES

app = typer.Typer(
    name="uoom",
    help=f"Operator toolkit of the uoom order platform.\n\n{EXIT_CODES}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help, as git's and kubectl's: rich's formatter doubles start-up
    context_settings={"help_option_names": ["-h", "--help"]},
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
app.add_typer(dlq_cmd.app, name="dlq")
app.command("optimizer")(optimizer_cmd.optimizer)
app.add_typer(channels_cmd.app, name="channels")
app.add_typer(dax_cmd.app, name="dax")
app.command("doctor")(doctor_cmd.doctor)
app.command("metrics")(metrics_cmd.metrics)
app.command("dash")(dash_cmd.dash)
app.command("bench")(bench_cmd.bench)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"uoom {version('uoom')}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    get: list[str] = typer.Option(
        [],
        "--get",
        metavar="PATH",
        help="With a command's --json: print only the value at PATH (dotted, e.g. api.readModel.hitRate; "
        "a list index or # for a count), one line each, strings bare, null when absent. Repeatable.",
    ),
) -> None:
    start().get = tuple(get)  # one context (settings read once) per invocation


def main() -> None:
    app(prog_name="uoom")
