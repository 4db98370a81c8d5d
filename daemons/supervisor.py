"""Runs daemons as child processes: prefixed output, restart with backoff, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Readiness = Callable[[], Awaitable[tuple[bool, str]]]  # -> (ready, one line on why not)


@dataclass
class DaemonSpec:
    name: str
    argv: list[str]
    url: str = ""
    ready: Readiness | None = None  # asked after each start until it says yes


@dataclass
class Supervisor:
    specs: list[DaemonSpec]
    say: Callable[[str, str], None]  # (daemon name or "up", line)
    grace_seconds: float = 30.0
    max_backoff: float = 30.0
    stable_after: float = 60.0  # a daemon up this long has its backoff reset
    ready_within: float = 120.0  # a daemon not ready by then is reported, with the reason
    ready_poll: float = 0.5
    restarts: dict[str, int] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    _ready: set[str] = field(default_factory=set)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        """Keep every daemon running until SIGINT/SIGTERM or `stop()`; then stop them all, each
        given `grace_seconds` to finish what is in flight. A clean stop is reported as `stopped`."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        keepers = [asyncio.create_task(self._keep(spec)) for spec in self.specs]
        await self._stopping.wait()
        self.say("up", "shutting down: daemons finish what is in flight")
        await asyncio.gather(*(self._terminate(name, p) for name, p in self._procs.items()))
        await asyncio.gather(*keepers, return_exceptions=True)
        return 0

    async def _keep(self, spec: DaemonSpec) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we forward SIGTERM
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            self._procs[spec.name] = proc
            assert proc.stdout is not None
            announcer = asyncio.create_task(self._announce_ready(spec)) if spec.ready else None
            await self._pump(spec.name, proc.stdout)
            code = await proc.wait()
            if announcer:
                announcer.cancel()
            self._ready.discard(spec.name)
            if self._stopping.is_set():
                self.say(spec.name, "stopped" if code == 0 else f"stopped, {exit_text(code)}")
                return
            if time.monotonic() - started > self.stable_after:
                delay = 1.0
            self.restarts[spec.name] = self.restarts.get(spec.name, 0) + 1
            self.say(
                spec.name,
                f"{exit_text(code)}; restarting in {delay:.0f} s (restart #{self.restarts[spec.name]})",
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, self.max_backoff)

    async def _announce_ready(self, spec: DaemonSpec) -> None:
        """Say once when the daemon is ready (or, after `ready_within`, what it is still missing)."""
        assert spec.ready is not None
        started = time.monotonic()
        reason = "no answer"
        while time.monotonic() - started < self.ready_within and not self._stopping.is_set():
            ready, reason = await spec.ready()
            if ready:
                self.say(spec.name, f"ready at {spec.url} in {time.monotonic() - started:.1f} s")
                self._ready.add(spec.name)
                if self._ready == {s.name for s in self.specs}:
                    self.say("up", "every daemon is ready")
                return
            await asyncio.sleep(self.ready_poll)
        if not self._stopping.is_set():
            self.say(spec.name, f"not ready after {self.ready_within:g} s: {reason}")

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.say(name, line.decode(errors="replace").rstrip())

    async def _terminate(self, name: str, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=self.grace_seconds)
        except TimeoutError:
            self.say(name, f"did not stop within {self.grace_seconds:.0f} s: killed")
            proc.kill()


def exit_text(code: int) -> str:
    """`exited with 3`, or `killed by SIGKILL` for a death by signal (a negative return code)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with {code}"
