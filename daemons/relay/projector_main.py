"""The projector process started by the relay (see `projector_process`): settings on stdin,
counters on stdout, stops on SIGTERM or when stdin closes (the parent is gone)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

import orjson

from daemons.kit.logs import setup_logging
from daemons.relay.projector import Projector, ProjectorStats
from uoom.config import Settings

REPORT_SECONDS = 1.0
NICENESS = 10


async def main() -> None:
    # The read side may lag a little; the publisher must not: under CPU contention, yield to it.
    os.nice(NICENESS)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    settings = Settings(_env_file=None, **orjson.loads(await reader.readline()))
    setup_logging(settings.debug)
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    async def parent_gone() -> None:
        await reader.read()  # end-of-file: the parent closed our stdin or died
        stopping.set()

    stats = ProjectorStats()

    async def report() -> None:
        last: dict[str, Any] = {}
        while not stopping.is_set():
            now = stats.as_json()
            if now != last:
                sys.stdout.buffer.write(orjson.dumps(now) + b"\n")
                sys.stdout.flush()
                last = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), REPORT_SECONDS)
        sys.stdout.buffer.write(orjson.dumps(stats.as_json()) + b"\n")
        sys.stdout.flush()

    watch, reporting = asyncio.create_task(parent_gone()), asyncio.create_task(report())
    try:
        await Projector(settings, stats).run(stopping)
    finally:
        stopping.set()
        watch.cancel()
        await asyncio.gather(watch, reporting, return_exceptions=True)


if __name__ == "__main__":
    setup_logging()
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        asyncio.run(main())
