"""`uoom up`: the local stack, migrations, then every daemon under one supervisor."""

from __future__ import annotations

import importlib.util
import sys

import typer

from commands._output import command, err

# daemon verb -> the package that implements it; a daemon runs once its package exists
DAEMONS = {"serve": "daemons.api", "relay": "daemons.relay", "optimizer": "daemons.optimizer"}


@command
async def up(
    stack: bool = typer.Option(True, "--stack/--no-stack", help="Start the local stack first."),
    demo: bool = typer.Option(False, "--demo", help="Load demo restaurants and channels."),
    only: list[str] = typer.Option([], "--only", help="Run only these daemons (repeatable)."),
) -> None:
    """Run the whole platform: stack up, migrate up, then serve, relay and optimizer, supervised.

    Ctrl-C or SIGTERM stops every daemon gracefully; the stack keeps running (`uoom stack down`).
    """
    from daemons.supervisor import DaemonSpec, Supervisor
    from uoom import migrate
    from uoom.config import Settings
    from uoom.provision import provision

    settings = Settings()
    if stack:
        from uoom.stack import Stack

        await Stack(settings).up()
        err.print("stack is up")
    applied = await migrate.up(settings.database_url.get_secret_value())
    provisioned = await provision(settings)
    for line in [*(f"applied {a}" for a in applied), *provisioned]:
        err.print(line)
    if demo:
        import asyncpg

        from uoom import demo as demo_data

        conn = await asyncpg.connect(settings.database_url.get_secret_value())
        try:
            await demo_data.load(conn)
        finally:
            await conn.close()
        err.print("demo data loaded")

    urls = settings.service_urls()
    url_of = {"serve": urls["api"], "relay": urls["relay"], "optimizer": urls["optimizer"]}
    specs = [
        DaemonSpec(verb, [sys.executable, "-m", "commands", verb], url_of[verb])
        for verb, package in DAEMONS.items()
        if importlib.util.find_spec(package) is not None and (not only or verb in only)
    ]
    for name, url in urls.items():
        err.print(f"  {name:<10} {url}")
    if not specs:
        err.print("no daemon is installed yet; the stack and schema are ready")
        return
    width = max(len(s.name) for s in specs)

    def say(name: str, line: str) -> None:
        sys.stdout.write(f"{name:>{width}} | {line}\n")
        sys.stdout.flush()

    await Supervisor(specs, say).run()
    err.print("all daemons stopped; the stack keeps running (uoom stack down stops it)")
