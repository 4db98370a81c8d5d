"""What the dashboard's end-to-end tests watch and how they read it (no tests in here).

`dash_platform` (module scope): a scratch database (migrated, demo data, an API key), a
redis-server and a Kafka topic of its own, and the API, optimizer and relay as processes on free
ports, each of which a test may stop and start again: two runs of the module side by side share
nothing but the servers of the stack. `RedisServer`: a redis-server of the
test's own on a free port, stopped and started by the test. The readers below take the numbers off
the running app (`DashApp` widgets) so the tests can compare them with what the API, PostgreSQL,
Redis and Kafka say when asked directly.

Every process started here is stopped by its pid in the fixture or context manager that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.e2e.conftest import REPO, _stop, _tail, _wait_until_answers, create_key, free_port, load_demo, order_body
from uoom import migrate
from uoom.config import Settings
from uoom.stores import outbox
from uoom.stores.kafka import consumer as kafka_consumer

REFRESH = 0.2  # the dashboard's poll period in these tests
WAIT = 15.0  # the most a test waits for the screen to show something
API_ROUTES = {"create": "POST /api/orders", "status": "GET /api/orders/{order_id}/status",
              "batch": "POST /api/orders/status:batch"}  # fmt: skip


class Daemon:
    """One `python -m commands ARGS` process that a test may stop and start again."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], ready_url: str, log_dir: Path) -> None:
        self.name, self.args, self.env, self.ready_url = name, args, env, ready_url
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.name} is running already"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "commands", *self.args], cwd=REPO, env=self.env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_until_answers(self.ready_url, self.proc, self.log, timeout=60)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def log_tail(self) -> str:
        return _tail(self.log)


class RedisServer:
    """A redis-server of the test's own on a free port, which the test stops and starts: Redis
    "goes down" for the dashboard alone while the shared one keeps serving everyone else."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log = log_dir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "redis-server is running already"
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"redis-server exited:\n{_tail(self.log)}"
            with contextlib.suppress(OSError), _connection(self.port) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise AssertionError(f"redis-server on {self.port} did not answer PING within 10 s:\n{_tail(self.log)}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGKILL)  # an outage, not a shutdown


def _connection(port: int) -> Any:
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=1)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class DashPlatform:
    dsn: str
    redis_url: str
    topic: str
    key: str
    env: dict[str, str]
    urls: dict[str, str]  # api, optimizer, relay
    daemons: dict[str, Daemon] = field(default_factory=dict)

    def settings(self, **more: Any) -> Settings:
        """What the dashboard reads: this platform's stores and daemons, a short refresh."""
        values: dict[str, Any] = {
            "database_url": self.dsn,
            "redis_url": self.redis_url,
            "kafka_topic": self.topic,
            "kafka_dlq_topic": f"{self.topic}.dlq",
            "api_url": self.urls["api"],
            "optimizer_url": self.urls["optimizer"],
            "relay_url": self.urls["relay"],
            "dash_refresh": REFRESH,
        }
        values.update(more)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def dash_env(self, **more: str) -> dict[str, str]:
        """The environment `uoom dash` runs with as a process."""
        return {
            **self.env,
            "UOOM_API_URL": self.urls["api"],
            "UOOM_OPTIMIZER_URL": self.urls["optimizer"],
            "UOOM_RELAY_URL": self.urls["relay"],
            "UOOM_API_KEY": self.key,
            **more,
        }

    def ensure_running(self) -> None:
        """A test that stopped a daemon restarts it in its `finally`; this catches one that did not."""
        for daemon in self.daemons.values():
            if not daemon.running:
                daemon.start()

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.urls["api"], headers={"Authorization": f"Bearer {self.key}"}, timeout=10)

    async def api_metrics(self) -> dict[str, Any]:
        """The API's metrics document, read here, not through the dashboard."""
        async with self.api() as client:
            response = await client.get("/api/metrics")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    async def create_orders(self, count: int) -> list[str]:
        async with self.api() as client:
            ids = []
            for _ in range(count):
                created = await client.post("/api/orders", json=order_body())
                assert created.status_code == 201, created.text
                ids.append(created.json()["id"])
        return ids

    async def sql(self, query: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    async def outbox_status(self) -> outbox.OutboxStatus:
        from uoom.stores.postgres import _init_connection

        conn = await asyncpg.connect(self.dsn)
        try:
            await _init_connection(conn)
            return await outbox.status(conn)
        finally:
            await conn.close()

    def redis(self) -> aioredis.Redis:
        return aioredis.from_url(self.redis_url)


async def _new_database(settings: Settings) -> str:
    base = settings.database_url.get_secret_value().rsplit("/", 1)[0]
    name = f"dash_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    dsn = f"{base}/{name}"
    await migrate.up(dsn)
    await load_demo(dsn)
    return dsn


async def _drop_database(dsn: str) -> None:
    base, name = dsn.rsplit("/", 1)
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def _topics(bootstrap: str, create: list[NewTopic] | None = None, delete: list[str] | None = None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        if create:
            await admin.create_topics(create)
        if delete:
            with contextlib.suppress(Exception):
                await admin.delete_topics(delete)
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def dash_platform(stack: Any, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashPlatform]:
    """The platform the dashboard watches. Its topic refuses records stamped more than a minute
    ahead, so an event from the future is a real poison that the relay dead-letters."""
    log_dir = tmp_path_factory.mktemp("dash")
    with contextlib.ExitStack() as cleanup:  # each thing undone, in reverse, however far the set-up got
        redis = RedisServer(log_dir)  # the daemons' loads, weights and rankings, apart from every other test's
        redis.start()
        cleanup.callback(redis.stop)
        dsn = asyncio.run(_new_database(settings))
        cleanup.callback(lambda: asyncio.run(_drop_database(dsn)))
        topic = f"uoom-dash-{uuid.uuid4().hex[:10]}"
        strict = {"message.timestamp.after.max.ms": "60000"}
        asyncio.run(_topics(settings.kafka_bootstrap, create=[NewTopic(topic, 3, 1, topic_configs=strict),
                                                              NewTopic(f"{topic}.dlq", 1, 1)]))  # fmt: skip
        cleanup.callback(lambda: asyncio.run(_topics(settings.kafka_bootstrap, delete=[topic, f"{topic}.dlq"])))
        ports = {"api": free_port(), "optimizer": free_port(), "relay": free_port()}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        env = dict(os.environ)
        env.update(
            UOOM_DATABASE_URL=dsn,
            UOOM_REDIS_URL=redis.url,
            UOOM_KAFKA_TOPIC=topic,
            UOOM_KAFKA_DLQ_TOPIC=f"{topic}.dlq",
            UOOM_API_PORT=str(ports["api"]),
            UOOM_OPTIMIZER_PORT=str(ports["optimizer"]),
            UOOM_OPTIMIZER_URL=urls["optimizer"],
            UOOM_RELAY_METRICS_PORT=str(ports["relay"]),
            UOOM_RELAY_PROJECTOR_GROUP=f"projector-{topic}",
            UOOM_RELAY_PRUNE_INTERVAL="0",
            UOOM_RELAY_RETRY_BASE_SECONDS="0.1",
            UOOM_RELAY_POLL_INTERVAL="1",
            UOOM_DISPATCH_INTERVAL="3600",  # no rolling re-optimization: loads (and so the ranking) hold still
            UOOM_API_WORKERS="1",
            UOOM_API_METRICS_REQUIRE_KEY="true",  # the dashboard must send its key
            UOOM_DEBUG="false",
            PYTHONUNBUFFERED="1",
        )
        _, key = asyncio.run(create_key(settings, "dash", dsn))
        platform = DashPlatform(dsn, redis.url, topic, key, env, urls)
        platform.daemons = {
            "optimizer": Daemon("optimizer", ["optimizer"], env, f"{urls['optimizer']}/healthz", log_dir),
            "relay": Daemon("relay", ["relay"], env, f"{urls['relay']}/api/v1/metrics", log_dir),
            "api": Daemon("api", ["serve"], env, f"{urls['api']}/healthz", log_dir),
        }
        for daemon in platform.daemons.values():
            cleanup.callback(daemon.stop)
            daemon.start()
        asyncio.run(_until_all_ok(platform))
        yield platform


async def _until_all_ok(platform: DashPlatform, timeout: float = 60) -> None:
    """Every daemon says `ok` (its dependencies seen up) and the optimizer has ranked the channels."""
    paths = {"api": "/api/metrics", "optimizer": "/api/metrics", "relay": "/api/v1/metrics"}
    headers = {"Authorization": f"Bearer {platform.key}"}
    deadline = time.monotonic() + timeout
    statuses: dict[str, Any] = {}
    redis = platform.redis()
    try:
        async with httpx.AsyncClient(headers=headers, timeout=3) as client:
            while time.monotonic() < deadline:
                for name, path in paths.items():
                    with contextlib.suppress(httpx.HTTPError, ValueError):
                        statuses[name] = (await client.get(platform.urls[name] + path)).json().get("status")
                ranked = await redis.zcard("uoom:rank:composite")
                if all(statuses.get(n) == "ok" for n in paths) and ranked:
                    return
                await asyncio.sleep(0.2)
    finally:
        await redis.aclose()
    logs = "\n".join(f"--- {d.name}\n{d.log_tail()}" for d in platform.daemons.values())
    raise AssertionError(f"the platform did not come up within {timeout} s: {statuses}\n{logs}")


# -- reading the screen -----------------------------------------------------------------------------


class Recorder:
    """The real sources, with every snapshot they hand the app kept: the failure messages quote
    the last one, and a test can see what the app was given next to what it shows."""

    def __init__(self, sources: Any) -> None:
        self._sources = sources
        self.snapshots: list[Any] = []
        self.errors: list[BaseException] = []
        self.closing = False  # the test is over: a fetch cut short by the shutdown is not counted

    async def fetch(self) -> Any:
        try:
            snapshot = await self._sources.fetch()
        except BaseException as exc:
            if not self.closing:
                self.errors.append(exc)
            raise
        self.snapshots.append(snapshot)
        return snapshot

    @property
    def last(self) -> Any:
        return self.snapshots[-1] if self.snapshots else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sources, name)


def text(value: Any) -> str:
    plain = getattr(value, "plain", None)
    return str(plain if plain is not None else value).strip()


def number(cell: Any) -> float | None:
    """A number as a cell shows it ("4.87", "1,204", "12.5%" -> 0.125, "3 ms" -> 3.0); None for a
    dash or blank (unknown)."""
    shown = text(cell)
    found = re.search(r"-?\d[\d,]*(?:\.\d+)?", shown)
    if not found:
        return None
    value = float(found.group().replace(",", ""))
    return value / 100 if shown.endswith("%") else value


def numbers(cell: Any) -> list[float]:
    """Every number a cell shows, in order ("3/40" -> [3.0, 40.0])."""
    return [float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", text(cell))]


def table(app: Any, widget_id: str) -> Any:
    """A DataTable of the screen on top (a modal's), else of the dashboard itself."""
    from textual.widgets import DataTable

    for screen in (app.screen, app.screen_stack[0]):
        found = screen.query(f"#{widget_id}")
        if found:
            return found.only_one(DataTable)
    raise LookupError(f"no #{widget_id} on {[type(s).__name__ for s in app.screen_stack]}")


def cell(app: Any, widget_id: str, row: str, column: str) -> str:
    return text(table(app, widget_id).get_cell(row, column))


def row_keys(app: Any, widget_id: str) -> list[str]:
    return [str(row.key.value) for row in table(app, widget_id).ordered_rows]


def health_state(app: Any, name: str) -> str | None:
    """The state class (up/degraded/down/unknown) of the health strip's row for `name`."""
    found = app.screen_stack[0].query(f"#health-{name}")
    if not found:
        return None
    states = {"up", "degraded", "down", "unknown"} & set(found.first().classes)
    return next(iter(states)) if len(states) == 1 else f"ambiguous {sorted(states)}"


async def shows(
    pilot: Any,
    condition: Callable[[], Any],
    what: str,
    seen: Callable[[], Any] | None = None,
    timeout: float = WAIT,
    snapshot: Callable[[], Any] | None = None,
) -> Any:
    """Wait until `condition()` is truthy on the running app; on timeout fail saying `what` was
    awaited and what the screen (`seen()`) and the sources' last `snapshot()` held instead."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = condition()
        except Exception as exc:  # noqa: BLE001 - not drawn yet (no such row or widget): keep waiting
            value, last = None, f"{type(exc).__name__}: {exc}"
        if value:
            return value
        if time.monotonic() > deadline:
            shown = seen() if seen else last
            given = snapshot() if snapshot else None
            raise AssertionError(f"not shown within {timeout} s: {what}\n  screen: {shown!r}\n  snapshot: {given!r}")
        await pilot.pause(0.05)


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 30, every: float = 0.1) -> Any:
    """Await `probe()` until it is truthy; fail saying `what` on timeout."""
    deadline = time.monotonic() + timeout
    while not (value := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(every)
    return value


async def consume_event(bootstrap: str, topic: str, event_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    """Every record of `topic` whose `id` header is `event_id`, read from the start for at most
    `timeout` s and for 1 s more after the first one (so a duplicate would show)."""
    consumer = kafka_consumer(Settings(_env_file=None, kafka_bootstrap=bootstrap), topic, group_id=None)  # type: ignore[call-arg]
    await consumer.start()
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    headers = {k: v.decode() for k, v in r.headers}
                    if headers.get("id") == event_id:
                        found.append({"headers": headers, "body": orjson.loads(r.value), "key": r.key})
                        deadline = min(deadline, time.monotonic() + 1)
    finally:
        await consumer.stop()
    return found
