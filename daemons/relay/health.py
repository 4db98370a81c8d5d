"""What the relay says about itself: its problems, the JSON summary and the Prometheus text.

Why apart from the daemon: health is read from outside (metrics endpoint, `--check`, dashboard)
at any moment; it only looks at the relay's parts, it never changes them.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from daemons.relay.connections import DB_ERRORS
from uoom.stores import outbox

if TYPE_CHECKING:
    from daemons.relay.daemon import Relay

STALLED_SECONDS = 10.0  # Kafka silent this long: the relay reports itself degraded
OUTBOX_REFRESH_SECONDS = 1.0  # scrapes more often than this share one outbox query


class Health:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._outbox_read_at = 0.0

    def problems(self) -> list[str]:
        relay, links = self.relay, self.relay.connections
        found = []
        if links.pool is None:
            found.append("not connected to PostgreSQL")
        elif links.db_error:
            found.append(f"PostgreSQL: {links.db_error}")
        if links.publisher is None:
            found.append("not connected to Kafka")
        stalled = relay.metrics.kafka_stalled_for
        if stalled is not None and stalled >= STALLED_SECONDS:
            found.append(f"Kafka has not acknowledged for {stalled:.0f} s")
        if relay.state == "running" and not relay._listening.is_set():
            found.append("LISTEN connection down (polling only)")
        if relay.with_projector and relay.state == "running" and not relay.metrics.projector_running:
            found.append("projector process not running (restarting)")
        return found

    async def summary(self) -> dict[str, Any]:
        await self._refresh_outbox()
        problems = self.problems()
        relay = self.relay
        status = relay.state if relay.state != "running" else ("degraded" if problems else "ok")
        return relay.metrics.document(status=status, problems=problems, dependencies=self.dependencies(),
                                      topic=relay.settings.kafka_topic)  # fmt: skip

    def dependencies(self) -> dict[str, dict[str, Any]]:
        """PostgreSQL and Kafka as the relay last saw them (docs/metrics.md `dependencies`)."""
        links, stalled = self.relay.connections, self.relay.metrics.kafka_stalled_for
        postgres = "not connected" if links.pool is None else links.db_error
        kafka = "not connected" if links.publisher is None else None
        if kafka is None and stalled is not None and stalled >= STALLED_SECONDS:
            kafka = f"no acknowledgement for {stalled:.0f} s"
        found = {"kafka": kafka, "postgres": postgres}
        return {name: {"up": error is None, "error": error} for name, error in found.items()}

    async def prometheus(self) -> bytes:
        await self._refresh_outbox()
        return self.relay.metrics.prometheus()

    async def _refresh_outbox(self) -> None:
        links = self.relay.connections
        if links.pool is None or time.monotonic() - self._outbox_read_at < OUTBOX_REFRESH_SECONDS:
            return
        try:
            self.relay.metrics.on_outbox(await asyncio.wait_for(outbox.status(links.pool), 2))
            self._outbox_read_at = time.monotonic()
            links.db_error = None
        except DB_ERRORS as exc:
            links.db_error = f"{type(exc).__name__}: {exc}"
