"""What every local service has: where it listens, how to start it, how to ask it if it is up."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from uoom.config import Settings
from uoom.errors import PrerequisiteMissing
from uoom.stack import process

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@dataclass(frozen=True)
class Held:
    """What a running service holds, said before `stack down` stops it."""

    what: str  # e.g. "1,234 rows in 7 tables of database uoom"
    lost: bool  # True: in memory only, gone once it stops; False: kept on disk


@dataclass
class ServiceStatus:
    name: str
    url: str
    up: bool
    pid: int | None
    managed: bool
    version: str | None
    error: str | None = None


class LocalService(ABC):
    name: str = ""
    start_timeout: float = 30.0
    stop_signal_name: str = "SIGTERM"
    in_memory: bool = False  # what it holds is gone once it stops

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home.resolve()

    @property
    @abstractmethod
    def url(self) -> str: ...

    @property
    @abstractmethod
    def host(self) -> str: ...

    @property
    def is_local(self) -> bool:
        """Only a service on this machine can be started here; a remote one is only probed."""
        return self.host in LOCAL_HOSTS

    @property
    def data_dir(self) -> Path:
        return self.home / self.name

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    @property
    def pidfile(self) -> Path:
        return self.home / "run" / f"{self.name}.pid"

    def pid(self) -> int | None:
        return process.tracked_pid(self.pidfile)

    @abstractmethod
    async def probe(self) -> str:
        """Speak the service's own protocol; return its version or raise."""

    async def holds(self) -> Held | None:
        """What it holds now, or None when it holds nothing (stopping it loses nothing)."""
        return None

    def check_prerequisites(self) -> None:
        """Raise PrerequisiteMissing naming the program and the fix."""

    def prepare(self) -> None:
        """One-time set-up before the first start (init data dir, fetch jars)."""

    def start_step(self) -> str:
        """What starting it does now, for the progress line (a long first-time set-up says so)."""
        return "starting"

    @abstractmethod
    def command(self) -> list[str]: ...

    def run_as(self) -> str | None:
        return None

    def start(self) -> int:
        self.prepare()
        return process.spawn(self.command(), self.log_file, self.pidfile, user=self.run_as())

    async def after_start(self) -> None:
        """Work that needs the running service (create the database, ...)."""


def plural(count: int, noun: str) -> str:
    """`1 row`, `1,234 rows`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def require_program(program: str, fix: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise PrerequisiteMissing(f"{program} not found: {fix}")
    return path
