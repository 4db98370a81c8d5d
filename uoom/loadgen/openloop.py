"""Open-loop HTTP load: requests leave on a fixed schedule whatever the server does, and latency
is measured from each request's intended send time, so a slow server cannot hide its queueing
(coordinated omission). A request the generator itself sent late counts as a late start; one it
could not send at all (too many in flight) as generator saturation: either says the numbers
describe the generator, not the server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from uoom.loadgen.histogram import Histogram, latency_histogram

LATE_START_S = 0.005
# uvicorn closes a connection idle for 5 s; a client that keeps one longer may send on it as it
# closes ("Server disconnected"): a pooled connection idle for 3 s is dropped first.
KEEPALIVE_S = 3.0
SATURATED = "generator saturated"

RequestFactory = Callable[[int], tuple[str, str, dict[str, Any]]]  # i -> (method, url, kwargs)
OnResponse = Callable[[int, int, bytes], None]  # (i, status, body) of every answer
OnProgress = Callable[["Run"], None]


@dataclass
class Run:
    name: str
    rate: float
    seconds: float
    latency: Histogram = field(default_factory=latency_histogram)  # ms, of the requests that succeeded
    errors: dict[str, int] = field(default_factory=dict)  # kind ("http 503", "ClientOSError", ...) -> count
    sent: int = 0
    ok: int = 0
    late_starts: int = 0  # requests the generator sent more than 5 ms after their intended time
    elapsed: float = 0.0  # seconds from the first intended send to the last answer
    cpu: dict[str, float] = field(default_factory=dict)  # cores used per process tree during the run

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def saturated(self) -> int:
        return self.errors.get(SATURATED, 0)

    @property
    def achieved_rate(self) -> float:
        """Successful requests per second of the run."""
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def latencies_ms(self) -> list[float]:
        """Every successful request's latency as the histogram holds it (for older readers)."""
        return list(self.latency.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rate": self.rate,
            "seconds": self.seconds,
            "sent": self.sent,
            "ok": self.ok,
            "errors": dict(self.errors),
            "late_starts": self.late_starts,
            "generator_saturated": self.saturated,
            "achieved_rate": round(self.achieved_rate, 2),
            "latency_ms": self.latency.summary(),
            "cpu_cores": dict(self.cpu),
        }


def connector() -> aiohttp.TCPConnector:
    """Connections for a load run: no pool limit (an open loop must not queue in the client), and
    dropped before the server's keep-alive would drop them."""
    return aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=KEEPALIVE_S)


def intended_times(rate: float, seconds: float, start: float = 0.0) -> list[float]:
    """The schedule: int(rate * seconds) requests, the i-th at start + i / rate."""
    if rate <= 0 or seconds <= 0:
        raise ValueError("rate and seconds must be positive")
    return [start + i / rate for i in range(int(rate * seconds))]


async def run(
    session: aiohttp.ClientSession,
    name: str,
    rate: float,
    seconds: float,
    make: RequestFactory,
    ok: Callable[[int], bool] = lambda s: s < 400,
    max_in_flight: int = 2000,
    *,
    on_response: OnResponse | None = None,
    on_progress: OnProgress | None = None,
    progress_every: float = 0.25,
    drain_timeout: float = 30.0,
) -> Run:
    result = Run(name, rate, seconds)
    in_flight: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.05
    schedule = intended_times(rate, seconds, start)

    async def one(i: int, intended: float) -> None:
        method, url, kwargs = make(i)
        try:
            async with session.request(method, url, **kwargs) as response:
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.error(type(exc).__name__)
            return
        if on_response is not None:
            on_response(i, response.status, body)
        if not ok(response.status):
            result.error(f"http {response.status}")
            return
        result.ok += 1
        result.latency.record((time.perf_counter() - intended) * 1000)

    async def report() -> None:
        while on_progress is not None:
            on_progress(result)
            await asyncio.sleep(progress_every)

    reporter = asyncio.create_task(report())
    try:
        for i, intended in enumerate(schedule):
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -LATE_START_S:
                result.late_starts += 1
            if len(in_flight) >= max_in_flight:
                result.error(SATURATED)
                continue
            task = asyncio.create_task(one(i, intended))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            result.sent += 1
        if in_flight:
            await asyncio.wait(in_flight, timeout=drain_timeout)
        for task in list(in_flight):  # still unanswered after the drain: counted, not awaited forever
            task.cancel()
            result.error("no answer")
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    result.elapsed = time.perf_counter() - start
    if on_progress is not None:
        on_progress(result)
    return result
