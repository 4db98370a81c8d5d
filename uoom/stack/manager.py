"""Bring the four local services up and down together; reuse any that already answer."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from uoom.config import Settings
from uoom.errors import ServiceUnavailable
from uoom.stack import process
from uoom.stack.base import Held, LocalService, ServiceStatus
from uoom.stack.dynamodb import DynamoDB
from uoom.stack.kafka import Kafka
from uoom.stack.postgres import Postgres
from uoom.stack.redis import Redis

Progress = Callable[[str, str], None]  # (service, what it is doing now)


class StackStatus(list[ServiceStatus]):
    @property
    def all_up(self) -> bool:
        return all(s.up for s in self)

    def as_json(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self]


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: list[LocalService] = [
            Postgres(settings),
            Redis(settings),
            Kafka(settings),
            DynamoDB(settings),
        ]

    def select(self, names: list[str] | None) -> list[LocalService]:
        if not names:
            return self.services
        known = {s.name: s for s in self.services}
        unknown = [n for n in names if n not in known]
        if unknown:
            from uoom.errors import UsageError

            raise UsageError(f"unknown service {', '.join(unknown)}; known: {', '.join(known)}")
        return [known[n] for n in names]

    async def status(self, names: list[str] | None = None) -> StackStatus:
        return StackStatus(await asyncio.gather(*(_status(s) for s in self.select(names))))

    async def up(self, names: list[str] | None = None, progress: Progress | None = None) -> StackStatus:
        """Start what is not answering, in parallel; a no-op for what already answers.
        `progress(service, step)` hears each step (e.g. a first Kafka start fetches its jars)."""
        chosen = self.select(names)
        for service in chosen:
            if service.is_local and not await _answers(service):
                service.check_prerequisites()
        await asyncio.gather(*(_ensure_up(s, progress or _quiet) for s in chosen))
        return await self.status(names)

    async def holdings(self, names: list[str] | None = None) -> dict[str, Held]:
        """What each service that `down(names)` would stop holds now (those holding nothing are
        left out). One that cannot be looked into is counted as holding data: better to ask."""

        async def look(service: LocalService) -> Held | None:
            try:
                return await asyncio.wait_for(service.holds(), timeout=15)
            except Exception as exc:  # noqa: BLE001 - unknown contents are reported, not raised
                return Held(f"could not look inside ({_one_line(exc)})", lost=service.in_memory)

        running = [s for s in self.select(names) if s.pid() is not None]  # down() stops only these
        found = await asyncio.gather(*(look(s) for s in running))
        return {s.name: held for s, held in zip(running, found, strict=True) if held is not None}

    def down(self, names: list[str] | None = None) -> list[str]:
        """Stop the services this stack started (by pid file); leave everything else alone."""
        stopped = []
        for service in reversed(self.select(names)):
            sig = signal.Signals[service.stop_signal_name]
            if process.stop(service.pidfile, sig=sig):
                stopped.append(service.name)
        return stopped


async def _answers(service: LocalService) -> bool:
    try:
        await asyncio.wait_for(service.probe(), timeout=5)
        return True
    except Exception:  # noqa: BLE001 - any failure to answer means not up
        return False


async def _status(service: LocalService) -> ServiceStatus:
    pid = service.pid()
    try:
        version = await asyncio.wait_for(service.probe(), timeout=5)
        return ServiceStatus(service.name, service.url, True, pid, pid is not None, version)
    except Exception as exc:  # noqa: BLE001 - reported in the status, not raised
        return ServiceStatus(service.name, service.url, False, pid, pid is not None, None, _one_line(exc))


def _quiet(service: str, step: str) -> None:
    pass


async def _ensure_up(service: LocalService, progress: Progress) -> None:
    if not await _answers(service):
        if not service.is_local:
            raise ServiceUnavailable(f"{service.name} at {service.url} does not answer (remote: not started here)")
        if service.pid() is None:
            progress(service.name, service.start_step())
            await asyncio.to_thread(service.start)
        progress(service.name, "waiting for it to answer")
        await _wait_until_up(service)
    progress(service.name, "up")
    await service.after_start()


async def _wait_until_up(service: LocalService) -> None:
    deadline = time.monotonic() + service.start_timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if service.pid() is None:
            raise ServiceUnavailable(f"{service.name} exited during start-up; see {service.log_file}")
        try:
            await asyncio.wait_for(service.probe(), timeout=5)
            return
        except Exception as exc:  # noqa: BLE001 - keep trying until the deadline
            last_error = _one_line(exc)
        await asyncio.sleep(0.25)
    raise ServiceUnavailable(
        f"{service.name} did not answer within {service.start_timeout:.0f} s ({last_error}); see {service.log_file}"
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip(": ")
