"""`uoom up`: the local stack, migrations, then every daemon under one supervisor."""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING

import typer

from commands._context import current
from commands._output import command, err

if TYPE_CHECKING:
    from daemons.supervisor import DaemonSpec

# daemon verb -> the package that implements it; a daemon runs once its package exists
DAEMONS = {"serve": "daemons.api", "relay": "daemons.relay", "optimizer": "daemons.optimizer"}
# where each daemon's metrics document (docs/metrics.md) says whether it is ready
METRICS = {"serve": "/api/metrics", "relay": "/api/v1/metrics", "optimizer": "/api/metrics"}
NAMES = {"serve": "order API", "relay": "relay", "optimizer": "optimizer"}


@command
async def up(
    stack: bool = typer.Option(True, "--stack/--no-stack", help="Start the local stack first (--no-stack: use it)."),
    demo: bool = typer.Option(False, "--demo", help="Load demo restaurants and channels."),
    only: list[str] = typer.Option([], "--only", help="Run only these daemons: serve, relay, optimizer (repeatable)."),
) -> None:
    """Run the whole platform: stack, migrations, every daemon.

    Stack up, migrate up, then serve, relay and optimizer under one supervisor.
    Each daemon's lines are printed prefixed with its name; a daemon that exits is restarted with
    backoff. Ctrl-C or SIGTERM stops every daemon gracefully; the stack keeps running
    (`uoom stack down` stops it).
    """
    from uoom.errors import UsageError

    unknown = sorted(set(only) - set(DAEMONS))
    if unknown:
        raise UsageError(f"--only {', '.join(unknown)}: the daemons are {', '.join(DAEMONS)}")
    context = current()
    settings = context.settings
    if stack:
        from commands.stack_cmd import bring_up
        from uoom.stack import Stack

        await bring_up(Stack(settings))
        err.print("stack is up")
    else:
        await context.require("postgres", "redis", "kafka", "dynamodb")
    from uoom import migrate
    from uoom.provision import provision

    with err.status("applying migrations, provisioning the DynamoDB table and the Kafka topics"):
        applied = await migrate.up(settings.database_url.get_secret_value())
        provisioned = await provision(settings)
    for line in [*(f"applied {a}" for a in applied), *provisioned]:
        err.print(line)
    if demo:
        from uoom import demo as demo_data

        async with context.postgres() as conn:
            await demo_data.load(conn)
        err.print("demo data loaded")

    urls = settings.service_urls()
    url_of = {"serve": str(urls["api"]), "relay": str(urls["relay"]), "optimizer": str(urls["optimizer"])}
    specs = [
        _spec(verb, url_of[verb], f"{url_of[verb]}{METRICS[verb]}")
        for verb, package in DAEMONS.items()
        if importlib.util.find_spec(package) is not None and (not only or verb in only)
    ]
    for name, url in urls.items():
        err.print(f"  {name:<10} {url or 'not configured'}")
    if not specs:
        err.print("no daemon is installed yet; the stack and schema are ready")
        return
    await _supervise(specs)
    err.print("all daemons stopped; the stack keeps running (uoom stack down stops it)")


def _spec(verb: str, url: str, metrics_url: str) -> DaemonSpec:
    from daemons.kit.check import check
    from daemons.supervisor import DaemonSpec

    async def ready() -> tuple[bool, str]:
        return await check(NAMES[verb], metrics_url)

    return DaemonSpec(verb, [sys.executable, "-m", "commands", verb], url, ready=ready)


async def _supervise(specs: list[DaemonSpec]) -> None:
    from daemons.supervisor import Supervisor

    width = max(len(s.name) for s in specs)

    def say(name: str, line: str) -> None:
        sys.stdout.write(f"{name:>{width}} | {line}\n")
        sys.stdout.flush()

    say("up", f"starting {', '.join(s.name for s in specs)}; Ctrl-C stops them")
    await Supervisor(specs, say).run()
