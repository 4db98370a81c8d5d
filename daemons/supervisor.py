"""Runs daemons as child processes: prefixed output, restart with backoff, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class DaemonSpec:
    name: str
    argv: list[str]
    url: str = ""


@dataclass
class Supervisor:
    specs: list[DaemonSpec]
    say: Callable[[str, str], None]  # (daemon name or "up", line)
    grace_seconds: float = 30.0
    max_backoff: float = 30.0
    stable_after: float = 60.0  # a daemon up this long has its backoff reset
    restarts: dict[str, int] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
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
            await self._pump(spec.name, proc.stdout)
            code = await proc.wait()
            if self._stopping.is_set():
                self.say(spec.name, f"stopped (exit {code})")
                return
            if time.monotonic() - started > self.stable_after:
                delay = 1.0
            self.restarts[spec.name] = self.restarts.get(spec.name, 0) + 1
            self.say(
                spec.name,
                f"exited with {code}; restarting in {delay:.0f} s (restart #{self.restarts[spec.name]})",
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, self.max_backoff)

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
