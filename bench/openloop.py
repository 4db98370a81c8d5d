"""Open-loop HTTP load: requests leave at a fixed rate whatever the server does, and latency is
measured from each request's intended send time, so a slow server cannot hide its queueing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Run:
    name: str
    rate: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    late_starts: int = 0  # requests the generator itself sent > 5 ms after their intended time
    cpu: dict[str, float] = field(default_factory=dict)  # cores used per process tree during the run

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


RequestFactory = Callable[[int], tuple[str, str, dict[str, Any]]]  # i -> (method, url, kwargs)


async def run(session: aiohttp.ClientSession, name: str, rate: float, seconds: float,
              make: RequestFactory, ok: Callable[[int], bool] = lambda s: s < 400,
              max_in_flight: int = 2000) -> Run:  # fmt: skip
    result = Run(name, rate, seconds)
    total = int(rate * seconds)
    interval = 1.0 / rate
    in_flight: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.05

    async def one(i: int, intended: float) -> None:
        method, url, kwargs = make(i)
        try:
            async with session.request(method, url, **kwargs) as response:
                await response.read()
                if not ok(response.status):
                    result.error(f"http {response.status}")
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.error(type(exc).__name__)
            return
        result.latencies_ms.append((time.perf_counter() - intended) * 1000)

    for i in range(total):
        intended = start + i * interval
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            result.late_starts += 1
        if len(in_flight) >= max_in_flight:
            result.error("generator saturated")
            continue
        task = asyncio.create_task(one(i, intended))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        result.sent += 1
    if in_flight:
        await asyncio.wait(in_flight, timeout=30)
    return result
