"""What the daemons share at run time: the PostgreSQL pool and Redis client opened once at
start-up, the start-up heap frozen out of the collector's sight, and the event loop's stalls
(GC pauses, timer lag) measured into the daemon's metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from daemons.background import Background
from daemons.kit.health import Dependencies
from daemons.kit.metrics import DaemonMetrics, Latency
from uoom.config import Settings
from uoom.stores.postgres import create_pool

PAUSE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


async def open_stores(settings: Settings, stack: contextlib.AsyncExitStack,
                      dependencies: Dependencies) -> tuple[asyncpg.Pool, aioredis.Redis]:  # fmt: skip
    """The pool and the Redis client, closed by `stack`; both probed when the metrics are read."""
    pool = await create_pool(settings, timeout=2)
    stack.push_async_callback(pool.close)
    # Short socket timeouts: a stuck Redis must cost a request little, never hang it.
    redis = aioredis.from_url(settings.redis_url.get_secret_value(), socket_timeout=0.2, socket_connect_timeout=0.2)
    stack.push_async_callback(redis.aclose)
    dependencies.probe("postgres", lambda: pool.fetchval("SELECT 1"))
    dependencies.probe("redis", redis.ping)
    return pool, redis


Build = Callable[[Any, contextlib.AsyncExitStack, asyncpg.Pool, aioredis.Redis], Awaitable[None]]


def lifespan(settings: Settings, dependencies: Dependencies, metrics: DaemonMetrics, build: Build) -> Any:
    """The FastAPI lifespan of an HTTP daemon: open the stores, let `build(app, stack, pool, redis)`
    start the daemon's own parts on the same exit stack, then freeze the start-up heap and watch
    the loop until shutdown, when the stack closes everything in reverse order."""

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            pool, redis = await open_stores(settings, stack, dependencies)
            await build(app, stack, pool, redis)
            freeze_startup_heap()
            await stack.enter_async_context(watch_the_loop(metrics))
            yield

    return run


def freeze_startup_heap() -> None:
    """Move everything built at start-up (botocore's service models, pydantic's schemas, ...) out
    of the garbage collector's sight: full collections otherwise walk that large, long-lived heap
    and stall the event loop for hundreds of milliseconds under load."""
    gc.collect()
    gc.freeze()


class GcPauses:
    """Time spent in the garbage collector, per generation (`gcPause.gen0` .. `gen2` in the JSON
    latency map, `python_gc_pause_seconds{generation}` in Prometheus): stalls of the event loop."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        histogram = metrics.histogram("python_gc_pause_seconds", "Garbage collector pauses", PAUSE_BUCKETS,
                                      ("generation",))  # fmt: skip
        self._by_generation = [metrics.latency(f"gcPause.gen{g}", histogram.labels(str(g))) for g in range(3)]
        self._started = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self._by_generation[info["generation"]].observe_ms((time.perf_counter() - self._started) * 1000)


class LoopLag(Background):
    """How late the event loop runs a timer (`eventLoopLag`): every request waits this long
    behind whatever held the loop (a slow callback, a GC pause, the process waiting for a CPU).
    Sampled every 50 ms."""

    INTERVAL_S = 0.05

    def __init__(self, metrics: DaemonMetrics) -> None:
        histogram = metrics.histogram("event_loop_lag_seconds", "Lateness of a 50 ms timer", PAUSE_BUCKETS)
        self.latency: Latency = metrics.latency("eventLoopLag", histogram)

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.INTERVAL_S)
            self.latency.observe_ms(max(0.0, (time.perf_counter() - started - self.INTERVAL_S) * 1000))


class LoopWatch:
    """GC pauses and loop lag, measured from `start()` to `stop()`."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self.pauses, self.lag = GcPauses(metrics), LoopLag(metrics)

    def start(self) -> None:
        self.pauses.start()
        self.lag.start()

    async def stop(self) -> None:
        await self.lag.stop()
        self.pauses.close()


@contextlib.asynccontextmanager
async def watch_the_loop(metrics: DaemonMetrics) -> AsyncIterator[None]:
    """Measure GC pauses and loop lag while the daemon runs."""
    watch = LoopWatch(metrics)
    watch.start()
    try:
        yield
    finally:
        await watch.stop()
