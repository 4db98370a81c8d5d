"""The order API as a real process (`uoom serve`) against the real stack, and what the tests need
around it: demo data, API keys, a DynamoDB server of their own (the stack's choice, dynoxide or
moto: `UOOM_DYNAMODB_SERVER`), a database connection.

Every process started here is stopped by its pid in the fixture that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient

from uoom import migrate
from uoom.config import Settings
from uoom.provision import ensure_topics
from uoom.stack.dynamodb import chosen_server, server_command

REPO = Path(__file__).resolve().parents[2]
# The main API process keeps its in-process status cache this long: the staleness bound under test.
STATUS_CACHE_TTL_MS = 400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Signal one process we started, by its pid, and reap it (SIGKILL if it does not go)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def _wait_until_answers(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    _stop(proc)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{_tail(log)}")


@dataclass
class ApiProcess:
    """One `uoom serve` process: its URL, pid, environment and log."""

    url: str
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, **({"timeout": 10} | kwargs))

    def log_tail(self) -> str:
        return _tail(self.log)


@contextlib.contextmanager
def run_daemon(log: Path, args: list[str], env: dict[str, str], ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start `python -m commands ARGS`, wait until `ready_url` answers, SIGTERM it afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands", *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_answers(ready_url, proc, log)
        yield proc
    finally:
        _stop(proc)


@contextlib.contextmanager
def run_api(log_dir: Path, name: str, **env: str) -> Iterator[ApiProcess]:
    """Start `python -m commands serve` on a free port, wait for /healthz, SIGTERM it afterwards.

    The optimizer is absent unless `UOOM_OPTIMIZER_URL` is given: it points at a port where
    nothing listens, so every order takes the fallback path."""
    port = free_port()
    full_env = dict(os.environ)
    full_env.update(
        {
            "UOOM_OPTIMIZER_URL": f"http://127.0.0.1:{free_port()}",
            "UOOM_STATUS_CACHE_TTL_MS": str(STATUS_CACHE_TTL_MS),
            "UOOM_API_WORKERS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    full_env.update(env)
    url = f"http://127.0.0.1:{port}"
    log = log_dir / f"api-{name}-{port}.log"
    with run_daemon(log, ["serve", "--port", str(port)], full_env, f"{url}/healthz") as proc:
        yield ApiProcess(url, proc, full_env, log)


@dataclass
class DynamoDBServer:
    """A DynamoDB API of the test's own (`server`: dynoxide or moto), which the test may kill and
    restart; in memory, so it comes back empty."""

    port: int
    log_dir: Path
    server: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.server} is running already"
        log = self.log_dir / f"{self.server}-{self.port}.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                server_command(self.server, self.port), cwd=self.log_dir, stdout=out, stderr=subprocess.STDOUT
            )
        # GET answers once it serves: dynoxide's on /, moto's on its own API's path
        _wait_until_answers(f"{self.endpoint}/{'moto-api/' if self.server == 'moto' else ''}", self.proc, log)

    def kill(self) -> None:
        """A crash, not a shutdown."""
        if self.proc is not None:
            _stop(self.proc, signal.SIGKILL)


@pytest.fixture
def dynamodb_server(settings: Settings, tmp_path: Path) -> Iterator[DynamoDBServer]:
    """A DynamoDB server of the test's own, the one the local stack runs; not started yet."""
    server = DynamoDBServer(free_port(), tmp_path, chosen_server(settings))
    try:
        yield server
    finally:
        server.kill()


async def create_key(settings: Settings, purpose: str, dsn: str | None = None) -> tuple[str, str]:
    """A fresh API key under a unique name: (name, key)."""
    from uoom import apikeys

    name = f"e2e-{purpose}-{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(dsn or settings.database_url.get_secret_value())
    try:
        return name, (await apikeys.create(conn, name))[1]
    finally:
        await conn.close()


async def load_demo(dsn: str) -> None:
    import uoom.demo

    conn = await asyncpg.connect(dsn)
    try:
        await uoom.demo.load(conn)
    finally:
        await conn.close()


async def flushed_redis(settings: Settings, db: int) -> str:
    """The URL of the stack's Redis database `db` (a test module's own), emptied."""
    url = settings.redis_url.get_secret_value().rsplit("/", 1)[0] + f"/{db}"
    client = aioredis.from_url(url)
    await client.flushdb()
    await client.aclose()
    return url


@contextlib.asynccontextmanager
async def scratch_platform(settings: Settings, dsn: str, purpose: str) -> AsyncIterator[dict[str, str]]:
    """A migrated database with the demo data, and an event topic (with its dead letters) of the
    test's own, deleted afterwards: the daemons' environment for them."""
    await migrate.up(dsn)
    await load_demo(dsn)
    topic = f"uoom-test-{purpose}-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings.model_copy(update={"kafka_topic": topic, "kafka_dlq_topic": f"{topic}.dlq"}))
    try:
        yield {"UOOM_DATABASE_URL": dsn, "UOOM_KAFKA_TOPIC": topic, "UOOM_KAFKA_DLQ_TOPIC": f"{topic}.dlq"}
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic, f"{topic}.dlq"])
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def demo(stack: Any, settings: Settings) -> None:
    """Demo channels and restaurants in the test database (idempotent)."""
    asyncio.run(load_demo(settings.database_url.get_secret_value()))


@pytest.fixture(scope="session")
def api_key(demo: None, settings: Settings) -> str:
    return asyncio.run(create_key(settings, "main"))[1]


@pytest.fixture(scope="session")
def api(demo: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The main API process for the session: optimizer absent, status cache STATUS_CACHE_TTL_MS."""
    with run_api(tmp_path_factory.mktemp("api"), "main") as process:
        yield process


@pytest.fixture
async def client(api: ApiProcess, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api.client(api_key) as c:
        yield c


@pytest.fixture
async def db(stack: Any, settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    from uoom.stores.postgres import _init_connection

    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    await _init_connection(conn)
    try:
        yield conn
    finally:
        await conn.close()


def restaurant(index: int = 0) -> tuple[uuid.UUID, float, float]:
    """A demo restaurant: id, latitude, longitude."""
    import uoom.demo

    rid, _, lat, lon = uoom.demo.restaurants()[index]
    return rid, lat, lon


def order_body(customer_id: uuid.UUID | str | None = None, *, restaurant_index: int = 0,
               items: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:  # fmt: skip
    """A valid create-order body: delivery 1 km or so from a demo restaurant."""
    rid, lat, lon = restaurant(restaurant_index)
    body: dict[str, Any] = {
        "customerId": str(customer_id or uuid.uuid4()),
        "restaurantId": str(rid),
        "items": items
        if items is not None
        else [{"itemId": "pad-thai", "name": "Pad thai", "quantity": 3, "unitPrice": 0.10}],
        "deliveryAddress": {
            "street": "1 Test Street",
            "city": "New York",
            "postalCode": "10001",
            "latitude": round(lat + 0.008, 6),
            "longitude": round(lon + 0.004, 6),
        },
    }
    body.update(overrides)
    return body


async def poll(probe: Any, timeout: float, interval: float = 0.02) -> tuple[Any, float]:
    """Call the async `probe` until it returns something truthy; (that value, seconds taken)."""
    started = time.monotonic()
    while True:
        value = await probe()
        elapsed = time.monotonic() - started
        if value or elapsed > timeout:
            return value, elapsed
        await asyncio.sleep(interval)


class TcpProxy:
    """A TCP relay in front of a real service, which a test can cut (every connection reset, the
    port refusing) and restore: the service "goes down" for one API process only, while the
    shared stack keeps running for everyone else."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._frozen = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._frozen.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            if self._frozen.is_set():  # accepted, never answered
                with self._lock:
                    self._conns.add(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self._frozen.is_set():  # frozen: swallowed, as by a network partition
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def freeze(self) -> None:
        """The service hangs: connections stay open, nothing more gets through either way."""
        self._frozen.set()

    def cut(self) -> None:
        """Refuse new connections and drop the open ones (shutdown wakes the blocked threads)."""
        listener, self._listener = self._listener, None
        with self._lock:
            conns, self._conns = self._conns, set()
        for s in [listener, *conns] if listener else conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


@pytest.fixture
def proxy_factory() -> Iterator[Any]:
    proxies: list[TcpProxy] = []

    def make(target: tuple[str, int]) -> TcpProxy:
        proxy = TcpProxy(target)
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.cut()
