"""The projector in a child process of the relay, so its DynamoDB client work (~2 ms of CPU per
write) never queues up behind or in front of the publisher on one event loop.

The child is `python -m daemons.relay.projector_main`. The parent writes the settings as one JSON
line on the child's stdin and keeps stdin open: when the parent dies, even by SIGKILL, the child
reads end-of-file and stops; on Linux the kernel also kills it at once (`_die_with_parent`). The
child prints its counters as one JSON line a second on stdout; its logs go to stderr, next to the
parent's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import signal
import sys

import orjson
from pydantic import SecretStr

from daemons.relay.metrics import RelayMetrics
from uoom.config import Settings

log = logging.getLogger("uoom.relay.projector")
REPORT_SECONDS = 1.0
STOP_GRACE_SECONDS = 15.0
PR_SET_PDEATHSIG = 1
try:  # loaded here, in the parent: the child, between fork and exec, only makes the call
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    """In the child before exec (Linux): the kernel SIGKILLs it when the relay dies.

    End-of-file on stdin stops a child that gets to run, but a niced child starved of CPU (a
    relay crash on a saturated machine) was seen to linger for minutes, still importing, then
    holding its share of the projector group's partitions. Killing it loses nothing: offsets are
    committed after the writes, and a write never replaces a newer version."""
    if _LIBC is not None and sys.platform == "linux":
        _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


def settings_line(settings: Settings) -> bytes:
    values = settings.model_dump(mode="json")
    for name in type(settings).model_fields:
        secret = getattr(settings, name)
        if isinstance(secret, SecretStr):
            values[name] = secret.get_secret_value()
    return orjson.dumps(values) + b"\n"


async def run_child(settings: Settings, metrics: RelayMetrics, stopping: asyncio.Event) -> None:
    """Run the projector process until `stopping`; raise if it ends by itself (to be restarted)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "daemons.relay.projector_main",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=_die_with_parent,  # a plain system call: safe between fork and exec
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(settings_line(settings))
    await child.stdin.drain()
    reports = asyncio.create_task(_read_reports(child.stdout, metrics))
    exited = asyncio.create_task(child.wait())
    metrics.projector_running = True
    try:
        await asyncio.wait([exited, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
        if not exited.done():
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), STOP_GRACE_SECONDS)
            except TimeoutError:
                log.warning("projector did not stop in %.0f s: killed", STOP_GRACE_SECONDS)
                child.kill()
                await exited
        elif not stopping.is_set():
            raise RuntimeError(f"projector process exited with {child.returncode}")
    finally:
        metrics.projector_running = False
        if child.returncode is None:
            child.kill()
            await child.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reports, 2)


async def _read_reports(stdout: asyncio.StreamReader, metrics: RelayMetrics) -> None:
    while line := await stdout.readline():
        with contextlib.suppress(orjson.JSONDecodeError, TypeError):
            metrics.on_projector(orjson.loads(line))
