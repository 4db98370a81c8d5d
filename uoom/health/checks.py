"""One finding of a health check, and how checks run: concurrently, each bounded in time, so a
service that does not answer costs its timeout and no more."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from uoom.config import Settings, env_name
from uoom.redact import mask_secrets

T = TypeVar("T")

OK, WARN, FAIL, DOWN, SKIP = "ok", "warn", "fail", "down", "skip"
# warn: worth knowing, not a failure (not permitted, no data); skip: not checked (not configured,
# or what it needs failed in its own row); fail: a problem; down: did not answer at all.
FAILING = (FAIL, DOWN)


@dataclass
class Check:
    name: str
    state: str
    detail: str
    fix: str | None = None
    elapsed_ms: float | None = None

    @property
    def failed(self) -> bool:
        return self.state in FAILING

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def bounded(name: str, work: Callable[[], Awaitable[Check]], seconds: float, fix: str | None) -> Check:
    """`work()` within `seconds`; no answer in time, or an unexpected error, is a row
    too (with `fix`, what to do when this thing does not answer), never an exception."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            found = await work()
    except TimeoutError:
        found = Check(name, DOWN, f"no answer in {seconds:g} s", fix)
    except Exception as exc:  # noqa: BLE001 - any failure is a finding, shown in its row
        found = Check(name, FAIL, one_line(exc), fix)
    found.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return found


async def in_daemon_thread(fn: Callable[[], T], seconds: float) -> T:
    """Run blocking `fn` (amazon-dax-client) off the loop, waiting at most `seconds`. A
    daemon thread rather than the loop's executor: `asyncio.run` waits for executor threads at
    exit, so a call that hangs would hang the command after its timeout."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error is not None else future.set_result(result)

    def work() -> None:
        try:
            result, error = fn(), None
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting coroutine
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="uoom-health", daemon=True).start()
    async with asyncio.timeout(seconds):
        return await future


def nearest_rank(samples: Sequence[float], p: float) -> float | None:
    """The p-th percentile by nearest rank: one of the samples, never an interpolation."""
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1], 3)


def start_or_check(settings: Settings, field: str) -> str:
    """The fix for a service that does not answer: start it when it is local, else check its setting."""
    raw = getattr(settings, field)
    url = str(raw.get_secret_value() if hasattr(raw, "get_secret_value") else raw)
    host = urlsplit(url).hostname if "://" in url else url.split(",")[0].rpartition(":")[0]
    if host in ("127.0.0.1", "localhost", "::1"):
        return "start it with `uoom stack up`"
    return f"check {env_name(field)} and that it is reachable"


def one_line(exc: BaseException) -> str:
    """`Type: first line`, without a secret the message may quote (a URL's password)."""
    text = mask_secrets(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
