"""`uoom relay`: the outbox relay daemon, and its health check."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from commands._output import ExitCode, command, err

if TYPE_CHECKING:
    from uoom.config import Settings


@command
async def relay(
    projector: bool | None = typer.Option(
        None,
        "--projector/--no-projector",
        help="Run the read-model projector in this process (default: UOOM_RELAY_PROJECTOR).",
    ),
    check: bool = typer.Option(
        False, "--check", help="Ask the running relay (its metrics port) whether it is healthy; exit 0 or 1."
    ),
) -> None:
    """Run the outbox relay: every event to Kafka, in order, retried, dead-lettered.

    Wakes on PostgreSQL NOTIFY (polls as a safety net), retries 1 s, 2 s, 4 s, then moves an event
    to the dead-letter table and topic; projects the read model into DynamoDB; prunes old rows;
    metrics on UOOM_RELAY_METRICS_PORT. Several replicas may run at once. SIGTERM or Ctrl-C
    finishes the batches in flight, then exits 0.

    Exit codes: 0 stopped cleanly / healthy, 1 failed / unhealthy, 2 usage error.
    """
    from uoom.config import Settings

    settings = Settings()
    if check:
        healthy, line = await _check(settings)
        err.print(line)
        raise typer.Exit(ExitCode.OK if healthy else ExitCode.PROBLEM)

    import asyncio
    import logging
    import signal

    from daemons.relay import Relay

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiokafka logs every reconnect attempt during an outage; the relay reports outages itself
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    daemon = Relay(settings, projector=projector)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, daemon.stop)
    await daemon.run()


async def _check(settings: Settings) -> tuple[bool, str]:
    import aiohttp

    url = f"http://{settings.relay_metrics_host}:{settings.relay_metrics_port}/api/v1/metrics"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
            session.get(url) as response,
        ):
            summary = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return False, f"relay not answering at {url} ({type(exc).__name__})"
    status = summary.get("status")
    outbox = summary.get("outbox") or {}
    detail = f"pending {outbox.get('pending')}, lag {outbox.get('lagSeconds')} s"
    if status == "ok":
        return True, f"relay ok ({detail})"
    return False, f"relay {status}: {'; '.join(summary.get('problems') or []) or detail}"
