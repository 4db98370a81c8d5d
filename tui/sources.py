"""Where the dashboard's numbers come from, read cheaply enough to do every second:

    async with DashboardSources(settings, api_key) as sources:
        snapshot = await sources.fetch()

Every read runs at once and is bounded by `timeout`: a source that does not answer costs that
and is a DOWN row with its error, never an exception out of `fetch`. The clients stay open
between fetches: one aiohttp session for the three daemons' metrics documents (the API's first,
alone, then the rest), one PostgreSQL connection (the outbox status each fetch, the channel
registry every 30 s or when the ranking names a channel it did not; replaced after a failure, at
most once per fetch), one Redis client (one pipelined round trip per fetch), and the probes'
clients (tui/probes.py, every 30 s).

All of it runs on an event loop of its own, in a thread: `fetch()` may be awaited from any loop
(the app's, or a thread worker's) and `fetch_blocking()` called from any thread, and neither the
I/O nor the parsing runs on the UI thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from tui.assemble import PostgresReading, RedisReading, assemble
from tui.model import DAEMONS, Snapshot
from tui.probes import PROBE_EVERY_SECONDS, Probes
from tui.readings import Seen
from tui.trends import Trends
from uoom.config import Settings
from uoom.daemon_metrics import MetricsReader, api_key_headers, metrics_url
from uoom.errors import describe

if TYPE_CHECKING:
    import asyncpg
    import redis.asyncio as aioredis

T = TypeVar("T")
log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_SECONDS = 1.0
API_HEAD_START_SECONDS = 0.1
REGISTRY_EVERY_SECONDS = 30.0  # capacities change rarely; a ranked channel the registry did not name reads it at once


class Answered(Exception):
    """The service answered, but not what was asked for (a database not migrated): up, with an error."""

    def __init__(self, detail: str, error: str) -> None:
        super().__init__(error)
        self.detail, self.error = detail, error


class DashboardSources:
    def __init__(self, settings: Settings, api_key: str | None = None, *, refresh: float | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, probe_every: float = PROBE_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.settings = settings
        self.refresh = refresh or settings.dash_refresh
        self.timeout = timeout
        self.trends = Trends(clock=clock)
        self._clock = clock
        self._headers = {"api": api_key_headers(api_key)}
        self._urls = {name: metrics_url(settings, name) for name in DAEMONS}
        self._reader = MetricsReader(timeout)
        self._probes = Probes(settings, timeout, probe_every, clock)
        self._postgres: asyncpg.Connection | None = None
        self._capacity: dict[str, int] | None = None  # the registry's, as last read
        self._registry_read_at = 0.0
        self._redis: aioredis.Redis | None = None
        self._loop: _LoopThread | None = None
        self._fetching: set[asyncio.Task[Snapshot]] = set()
        self._one_at_a_time = asyncio.Lock()  # bound to the sources' loop when first used

    async def __aenter__(self) -> DashboardSources:
        self._loop = _LoopThread()
        await asyncio.wrap_future(self._loop.submit(self._open()))
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if self._loop is not None:
            await asyncio.wrap_future(self._loop.submit(self._close()))
            self._loop.stop()
            self._loop = None

    async def fetch(self) -> Snapshot:
        """One look at everything, from any event loop."""
        return await asyncio.wrap_future(self._running().submit(self._fetch()))

    def fetch_blocking(self) -> Snapshot:
        """The same, for a thread without an event loop (a Textual thread worker)."""
        return self._running().submit(self._fetch()).result()

    def probe_soon(self, name: str) -> None:
        """Probe `name` (kafka, dynamodb, dax) at the next fetch, not at its next turn: from any thread."""
        self._running().loop.call_soon_threadsafe(self._probes.soon, name)

    def _running(self) -> _LoopThread:
        if self._loop is None:
            raise RuntimeError("use `async with DashboardSources(...) as sources`")
        return self._loop

    # -- on the sources' own loop -------------------------------------------------------------------

    async def _open(self) -> None:
        import asyncpg  # noqa: F401 - imported now, not during the first fetch (see Probes.open)
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        import uoom.channels
        import uoom.rankings
        import uoom.stores.outbox
        import uoom.stores.postgres  # noqa: F401

        asyncio.get_running_loop().set_exception_handler(_quiet)
        await self._reader.__aenter__()
        await self._probes.open()
        # one immediate retry: a connection the pool kept across a Redis restart fails once
        self._redis = aioredis.from_url(self.settings.redis_url.get_secret_value(), retry=Retry(NoBackoff(), 1),
                                        socket_connect_timeout=self.timeout, socket_timeout=self.timeout)  # fmt: skip

    async def _close(self) -> None:
        """Cancel a fetch still running (the app quit during it), close every client, then end
        what the clients left behind, so the loop closes with nothing pending."""
        await _cancel([task for task in self._fetching if not task.done()])
        await self._reader.__aexit__(None, None, None)
        if self._redis is not None:
            await self._redis.aclose()
        if self._postgres is not None:
            self._postgres.terminate()
        await self._probes.close()
        await _cancel([task for task in asyncio.all_tasks() if task is not asyncio.current_task()])
        await asyncio.get_running_loop().shutdown_asyncgens()

    async def _fetch(self) -> Snapshot:
        task = asyncio.current_task()
        assert task is not None
        self._fetching.add(task)
        try:
            async with self._one_at_a_time:  # the PostgreSQL connection takes one query at a time
                return await self._read_all()
        finally:
            self._fetching.discard(task)

    async def _read_all(self) -> Snapshot:
        # The API's document first and alone (for at most API_HEAD_START, so a hung API still costs
        # one timeout): building it is the API's own work, on the loop that answers its requests, so
        # the dashboard's other reads, and the processes they wake, do not compete with it for the CPU.
        api_read = asyncio.ensure_future(self._read_daemon("api"))
        await asyncio.wait([api_read], timeout=API_HEAD_START_SECONDS)
        documents, (postgres, pg_seen), (redis, redis_seen), probed = await asyncio.gather(
            self._read_daemons([name for name in DAEMONS if name != "api"]),
            self._bounded(self._read_postgres, "PostgreSQL"),
            self._bounded(self._read_redis, "Redis"),
            self._probes.read(),
        )
        known = self._capacity
        if redis is not None and known is not None and any(row["channelId"] not in known for row in redis.ranking):
            self._registry_read_at = -REGISTRY_EVERY_SECONDS  # a channel the registry did not name: read it again
        seen = {"postgres": pg_seen, "redis": redis_seen, **probed}
        documents = {"api": await api_read, **documents}
        return assemble(self.settings, self.refresh, self.trends, documents, seen, postgres, redis, self._clock())

    async def _read_daemon(self, name: str) -> tuple[dict[str, Any] | None, str]:
        return await self._reader.read(name, self._urls[name], self._headers.get(name))

    async def _read_daemons(self, names: list[str]) -> dict[str, tuple[dict[str, Any] | None, str]]:
        found = await asyncio.gather(*(self._read_daemon(name) for name in names))
        return dict(zip(names, found, strict=True))

    async def _bounded(self, read: Callable[[], Awaitable[tuple[T, str]]], what: str) -> tuple[T | None, Seen]:
        """(the value, up with its detail) or (None, down with why), within `timeout`."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                value, about = await read()
        except TimeoutError:
            why = f"{what} did not answer in {self.timeout:g} s"
            return None, Seen(False, why, why)
        except Answered as answered:
            return None, Seen(True, answered.detail, answered.error)
        except Exception as exc:  # noqa: BLE001 - a source that fails is a row, not an error
            return None, Seen(False, describe(exc), describe(exc))
        return value, Seen(True, f"{about}, {(time.perf_counter() - started) * 1000:.1f} ms")

    async def _read_postgres(self) -> tuple[PostgresReading, str]:
        """The outbox status and the registry's capacities, on the kept connection; a connection
        that failed is dropped here and replaced on the next fetch."""
        import asyncpg

        from uoom.channels import list_channels
        from uoom.stores import outbox
        from uoom.stores.postgres import connect

        if self._postgres is None or self._postgres.is_closed():
            self._postgres = await connect(self.settings, connect_timeout=self.timeout)
        conn = self._postgres
        about = f"PostgreSQL {conn.get_settings().server_version.split()[0]}"
        try:
            status = await outbox.status(conn)
            now = self._clock()
            if self._capacity is None or now - self._registry_read_at >= REGISTRY_EVERY_SECONDS:
                self._capacity = {row["id"]: row["capacity"] for row in await list_channels(conn)}
                self._registry_read_at = now
            capacity = self._capacity
        except BaseException as exc:
            connected = not isinstance(exc, asyncpg.PostgresConnectionError) and not conn.is_closed()
            if not (isinstance(exc, asyncpg.PostgresError) and connected):
                # lost, or cancelled by the timeout mid-query: the connection's state is unknown
                self._postgres = None
                conn.terminate()
                raise
            # the server answered (a statement failed): the connection is fine
            if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.UndefinedColumnError):
                raise Answered(f"{about}: not migrated, run `uoom migrate up`", describe(exc)) from exc
            raise Answered(f"{about}: {type(exc).__name__}", describe(exc)) from exc
        return PostgresReading(status, capacity), about

    async def _read_redis(self) -> tuple[RedisReading, str]:
        from uoom import rankings

        assert self._redis is not None
        ranking, loads, weights = await rankings.board(self._redis)
        return RedisReading(ranking, loads, weights), f"{len(ranking)} channels ranked"


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """What a client left behind when a read was cut short by its timeout (asyncpg's "Future
    exception was never retrieved" after a cancelled connect): logged, never printed over the screen."""
    log.debug("sources loop: %s", context.get("message"), exc_info=context.get("exception"))


class _LoopThread:
    """An event loop running in a daemon thread, for coroutines submitted from anywhere."""

    def __init__(self) -> None:
        import uvloop  # the daemons' loop (uvicorn[standard]): fewer instructions per read than asyncio's

        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="uoom-dash-sources", daemon=True)
        self._thread.start()

    def submit(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()
