"""The relay daemon's lifecycle: outbox -> Kafka, in order, retried, dead-lettered; plus the
read-model projector and pruning.

One event loop, one asyncpg pool, one idempotent producer (connections.py); `relay_concurrency`
batch workers and the pruning loop (workers.py); the LISTEN connection that wakes them
(wakeup.py); what the relay reports about itself (health.py). This module starts them in order
and stops them gracefully: batches in flight finish, then everything closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from daemons.relay import http
from daemons.relay.connections import Connections
from daemons.relay.health import Health
from daemons.relay.metrics import RelayMetrics
from daemons.relay.projector_process import run_child
from daemons.relay.wakeup import Doorbell, listen, pause
from daemons.relay.workers import Workers
from uoom.config import Settings
from uoom.errors import UoomError

log = logging.getLogger("uoom.relay")
STOP_GRACE_SECONDS = 20.0  # below `uoom up`'s 30 s, after which it kills


class Relay:
    def __init__(self, settings: Settings, *, projector: bool | None = None) -> None:
        self.settings = settings
        self.with_projector = settings.relay_projector if projector is None else projector
        self.metrics = RelayMetrics()
        self.doorbell = Doorbell()
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self.metrics_port: int | None = None
        self.state = "starting"
        self._stopping = asyncio.Event()
        self._listening = asyncio.Event()
        self.connections = Connections(settings, self.metrics, self._stopping)
        self.workers = Workers(settings, self.connections, self.doorbell, self.metrics, self._stopping)
        self.health = Health(self)

    def stop(self) -> None:
        """Ask for a graceful stop: batches in flight finish, then `run` returns."""
        if not self._stopping.is_set():
            log.info("stopping: finishing the batches in flight")
            self.state = "stopping"
            self._stopping.set()
            self.doorbell.ring_all()

    async def run(self, *, serve_metrics: bool = True) -> None:
        server = None
        if serve_metrics:
            host, port = self.settings.relay_metrics_host, self.settings.relay_metrics_port
            try:
                server = await http.serve(host, port, self.summary, self.prometheus)
                self.metrics_port = server.port
            except OSError as exc:
                raise UoomError(
                    f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}); "
                    "another relay there? set UOOM_RELAY_METRICS_PORT"
                ) from None
            log.info("metrics on http://%s:%s%s", self.settings.relay_metrics_host, self.metrics_port, http.JSON_PATH)
        helpers: list[asyncio.Task[Any]] = []
        self.metrics.loop.start()
        try:
            if self.with_projector:
                helpers.append(asyncio.create_task(self._keep("projector", self._projector)))
            if not await self.connections.connect():
                return
            dsn = self.settings.database_url.get_secret_value()
            helpers.append(asyncio.create_task(listen(dsn, self.doorbell, self._stopping, self._listening)))
            helpers.append(asyncio.create_task(self.workers.prune_periodically()))
            workers = [asyncio.create_task(self.workers.work()) for _ in range(self.settings.relay_concurrency)]
            self.state = "running"
            log.info(
                "relaying outbox -> %s (%d workers, batches of %d, poll every %.1f s)",
                self.settings.kafka_topic,
                len(workers),
                self.settings.relay_batch_size,
                self.settings.relay_poll_interval,
            )
            await self._stopping.wait()
            await _finish(workers, STOP_GRACE_SECONDS, "a batch was still waiting for Kafka; it stays pending")
        finally:
            self._stopping.set()
            await _finish(helpers, 10.0, "a helper task did not stop in time")
            await self.connections.close()
            if server is not None:
                await server.stop()
            await self.metrics.loop.stop()
            log.info("stopped")

    async def _projector(self, stopping: asyncio.Event) -> None:
        await run_child(self.settings, self.metrics, stopping)

    async def _keep(self, name: str, run: Any) -> None:
        """Run a helper until stopped, restarting it after an unexpected error."""
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await run(self._stopping)
            except Exception:
                log.exception("%s failed; restarting in %.0f s", name, delay)
                await pause(self._stopping, delay)
                delay = min(delay * 2, 30.0)

    def problems(self) -> list[str]:
        return self.health.problems()

    async def summary(self) -> dict[str, Any]:
        return await self.health.summary()

    async def prometheus(self) -> bytes:
        return await self.health.prometheus()


async def _finish(tasks: list[asyncio.Task[Any]], grace: float, message: str) -> None:
    """Let tasks end on their own within `grace`, then cancel the rest (a cancelled batch rolls
    back: its rows stay pending for the next relay)."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=grace)
    for task in late:
        log.warning(message)
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.error("task failed: %s: %s", type(result).__name__, result)
