"""What a daemon knows of the services it uses, for the `dependencies` and `problems` of its
metrics, and for quiet start-up: a service that is still starting is waited for at debug level;
one that stays down past the grace period gets one clear warning, and one line when it is back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from daemons.kit.logs import describe

STARTUP_GRACE_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 1.0


class Dependency:
    """One service: up (True), down (False) with the reason, or not known yet (None)."""

    def __init__(self, name: str, log: logging.Logger, *, grace: float = STARTUP_GRACE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.name, self.log, self.grace, self._clock = name, log, grace, clock
        self.up: bool | None = None
        self.error: str | None = None
        self._created = clock()
        self._down_since: float | None = None
        self._reported = False  # a warning went out for this outage
        self._was_up = False

    def ok(self) -> None:
        if self._reported:
            self.log.info("%s is back", self.name)
        self.up, self.error, self._down_since, self._reported, self._was_up = True, None, None, False, True

    def failed(self, reason: BaseException | str) -> None:
        """Record a failure. Before the service was ever up, and within the grace period of the
        daemon's start, it is still starting: debug level. Otherwise one warning per outage."""
        now = self._clock()
        self.error = reason if isinstance(reason, str) else describe(reason)
        if self._down_since is None:
            self._down_since = now
        starting = not self._was_up and now - self._created < self.grace
        self.up = False
        if starting or self._reported:
            self.log.debug("%s unavailable (%s)", self.name, self.error)
            return
        self._reported = True
        waited = now - self._down_since
        since = f" for {waited:.0f} s" if waited >= 1 else ""
        self.log.warning("%s unavailable%s: %s; retrying", self.name, since, self.error)

    @property
    def starting(self) -> bool:
        """Down, but never up yet and within the grace period: still starting, most likely."""
        return self.up is False and not self._was_up and self._clock() - self._created < self.grace

    def as_json(self) -> dict[str, Any]:
        return {"up": self.up, "error": self.error}


class Dependencies:
    """The named dependencies of a daemon. Passive ones are updated by the code that uses the
    service; probed ones are checked when the metrics are read, at most every `every` seconds,
    concurrently, each bounded by PROBE_TIMEOUT_SECONDS."""

    def __init__(self, log: logging.Logger, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self._clock = log, clock
        self._all: dict[str, Dependency] = {}
        self._probes: dict[str, tuple[Callable[[], Awaitable[object]], float]] = {}
        self._checked: dict[str, float] = {}

    def track(self, name: str) -> Dependency:
        found = self._all.get(name)
        if found is None:
            found = self._all[name] = Dependency(name, self.log, clock=self._clock)
        return found

    def probe(self, name: str, check: Callable[[], Awaitable[object]], every: float = 2.0) -> None:
        self.track(name)
        self._probes[name] = (check, every)

    async def refresh(self) -> None:
        now = self._clock()
        due = [name for name, (_, every) in self._probes.items() if now - self._checked.get(name, -every) >= every]
        for name in due:
            self._checked[name] = now
        await asyncio.gather(*(self._run(name) for name in due))

    async def _run(self, name: str) -> None:
        check, _ = self._probes[name]
        dependency = self._all[name]
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                await check()
        except Exception as exc:  # noqa: BLE001 - a failed probe is a finding, not an error
            dependency.failed(exc)
        else:
            dependency.ok()

    def as_json(self) -> dict[str, dict[str, Any]]:
        return {name: dep.as_json() for name, dep in sorted(self._all.items())}

    def problems(self) -> list[str]:
        return [f"{name}: {dep.error}" for name, dep in sorted(self._all.items()) if dep.up is False]

    def starting(self) -> bool:
        return any(dep.starting for dep in self._all.values())
