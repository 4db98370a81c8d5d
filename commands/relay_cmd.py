"""`uoom relay`: the outbox relay daemon, and its health check."""

from __future__ import annotations

from typing import Any

import typer

from commands._context import current
from commands._daemon import CHECK_OPTION, ask
from commands._output import command


@command
async def relay(
    projector: bool | None = typer.Option(
        None,
        "--projector/--no-projector",
        help="Run the read-model projector in this process (default: UOOM_RELAY_PROJECTOR).",
    ),
    check: bool = CHECK_OPTION,
) -> None:
    """Run the outbox relay: every event to Kafka, in order.

    Every event is published in order, retried, dead-lettered when refused for good.
    Wakes on PostgreSQL NOTIFY (polls as a safety net), retries 1 s, 2 s, 4 s, then moves an event
    to the dead-letter table and topic; projects the read model into DynamoDB; prunes old rows;
    metrics on UOOM_RELAY_METRICS_PORT. Several replicas may run at once. SIGTERM or Ctrl-C
    finishes the batches in flight, then exits 0.

    Exit codes: 0 stopped cleanly / healthy, 1 failed / unhealthy, 2 usage error.
    """
    settings = current().settings
    if check:
        raise await ask("relay", f"{settings.service_urls()['relay']}/api/v1/metrics", _outbox)

    import asyncio
    import signal

    from daemons.kit.logs import setup_logging
    from daemons.relay import Relay

    setup_logging(settings.debug)
    daemon = Relay(settings, projector=projector)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, daemon.stop)
    await daemon.run()


def _outbox(document: dict[str, Any]) -> str:
    from daemons.kit.check import dependencies

    found = (document.get("relay") or {}).get("outbox") or {}
    return f"{dependencies(document)}; pending {found.get('pending')}, lag {found.get('lagSeconds')} s"
