"""What the HTTP daemons share: uvicorn settings, and the PostgreSQL pool and Redis client
every daemon opens once at start-up and closes at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

import asyncpg
import redis.asyncio as aioredis
import uvicorn

from daemons.background import Background
from uoom.config import Settings
from uoom.metrics import RollingWindow
from uoom.stores.postgres import create_pool


def run(factory: str, host: str, port: int, workers: int = 1) -> None:
    """Serve `module:create_app` with uvloop and httptools; SIGTERM lets in-flight requests finish."""
    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", timeout_graceful_shutdown=10)  # fmt: skip


async def open_stores(settings: Settings, stack: contextlib.AsyncExitStack) -> tuple[asyncpg.Pool, aioredis.Redis]:
    pool = await create_pool(settings, timeout=2)
    stack.push_async_callback(pool.close)
    # Short socket timeouts: a stuck Redis must cost a request little, never hang it.
    redis = aioredis.from_url(settings.redis_url.get_secret_value(), socket_timeout=0.2, socket_connect_timeout=0.2)
    stack.push_async_callback(redis.aclose)
    return pool, redis


def freeze_startup_heap() -> None:
    """Move everything built at start-up (botocore's service models, pydantic's schemas, ...) out
    of the garbage collector's sight: full collections otherwise walk that large, long-lived heap
    and stall the event loop for hundreds of milliseconds under load."""
    gc.collect()
    gc.freeze()


class GcPauses:
    """Time spent in the garbage collector, per generation: stalls of the event loop."""

    def __init__(self) -> None:
        self.max_ms = [0.0, 0.0, 0.0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        pause = (time.perf_counter() - self._started) * 1000
        self.count[generation] += 1
        self.total_ms[generation] += pause
        self.max_ms[generation] = max(self.max_ms[generation], pause)

    def summary(self) -> dict[str, list[float] | list[int]]:
        return {"count": self.count, "totalMs": [round(t, 1) for t in self.total_ms],
                "maxMs": [round(m, 1) for m in self.max_ms]}  # fmt: skip


class LoopLag(Background):
    """How late the event loop runs a timer: every request waits this long behind whatever held
    the loop (a slow callback, a GC pause, the process waiting for a CPU). Sampled every 50 ms."""

    INTERVAL_S = 0.05

    def __init__(self) -> None:
        self.window = RollingWindow()

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.INTERVAL_S)
            self.window.add(max(0.0, (time.perf_counter() - started - self.INTERVAL_S) * 1000))
