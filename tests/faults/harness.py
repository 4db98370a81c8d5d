"""The fault suite's harness (no tests in here): a private stack that tests may kill, the daemons
as real processes, a steady client load, the books check and the recovery record.

The private stack is a `uoom.stack.Stack` of its own (own home, free ports): the suite stops,
kills and stalls its services, which the shared stack (other tests, other helpers) must never see.
Every process is started here and stopped by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr

from tests.e2e.conftest import REPO, _stop, _tail, _wait_until_answers, create_key, load_demo, order_body
from tests.integration.relay_support import free_ports
from uoom.config import Settings
from uoom.errors import ServiceUnavailable
from uoom.stack import Stack, process
from uoom.stack.base import LocalService

log = logging.getLogger("uoom.faults")
logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the rest
REPORT = REPO / "bench" / "reports" / "faults.json"
REPORT_LOCK = Path(tempfile.gettempdir()) / "uoom-faults-report.lock"
# The API's request deadline (the shipped default of UOOM_API_REQUEST_TIMEOUT_MS): a request that
# cannot finish answers 503 then.
REQUEST_DEADLINE_S = 3.0
# A "quick" 503: within the deadline plus 3 s (the deadline bounds the request's work, not the time
# it queues for a CPU on a busy, shared 2-core machine).
QUICK_S = REQUEST_DEADLINE_S + 3.0
# No answer within this is a hang, whatever the request.
HANG_S = 10.0
# Clients drop an idle connection before the server does (uvicorn: 5 s), or a request may go out on
# a connection the server is closing: "disconnected without a response", a race of the client's.
KEEPALIVE_S = 2.0
# Creates per second of the steady load (FAULTS_RATE overrides it, e.g. on a saturated machine;
# the rate used is recorded with each result).
RATE = float(os.environ.get("FAULTS_RATE", "20"))
# Environment names the daemons must not inherit from the test process (they point at the shared stack).
SEED_NAMES = {"DYNAMODB_ENDPOINT", "DAX_ENDPOINT", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "ORDER_CACHE_TTL_HOURS"}  # fmt: skip


# -- the private stack ------------------------------------------------------------------------


class FaultStack:
    """PostgreSQL, Redis, Kafka and DynamoDB (the stack's server) on free ports under a home of their own."""

    def __init__(self, home: Path) -> None:
        # Below the kernel's ephemeral range (32768-60999 here): a service restarted mid-test must
        # find its port free, and an outgoing connection may take any ephemeral port meanwhile.
        pg, redis, kafka, dynamo = (free_ports(n, low=20000, high=32000) for n in (1, 1, 2, 1))
        self.home = home
        self.dsn = f"postgresql://uoom@127.0.0.1:{pg}/uoom"
        self.settings = Settings(
            home=home,
            database_url=SecretStr(self.dsn),
            redis_url=SecretStr(f"redis://127.0.0.1:{redis}/0"),
            kafka_bootstrap=f"127.0.0.1:{kafka}",
            dynamodb_endpoint=f"http://127.0.0.1:{dynamo}",
            dax_endpoint="",
        )
        self.stack = Stack(self.settings)
        self.api_key = ""

    def service(self, name: str) -> LocalService:
        return self.stack.select([name])[0]

    def pid(self, name: str) -> int:
        pid = self.service(name).pid()
        assert pid is not None, f"{name} is not running"
        return pid

    async def setup(self) -> None:
        from uoom import migrate
        from uoom.provision import provision

        started = time.monotonic()
        await self.stack.up()
        log.info("private stack up in %.1f s under %s", time.monotonic() - started, self.home)
        await migrate.up(self.dsn)
        await provision(self.settings)
        await load_demo(self.dsn)
        self.api_key = (await create_key(self.settings, "faults", self.dsn))[1]

    async def up(self, *names: str) -> float:
        """Start what does not answer (all by default); the seconds it took."""
        started = time.monotonic()
        for name in names or [s.name for s in self.stack.services]:
            pid = self.service(name).pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)  # a stalled service is resumed, not restarted
        try:
            await self.stack.up(list(names) or None)
        except ServiceUnavailable as exc:  # say why: the home (and its logs) go with the session
            logs = "\n".join(f"--- {s.log_file}:\n{_tail(s.log_file)}" for s in self.stack.services)
            raise RuntimeError(f"{exc}\n{logs}") from exc
        return time.monotonic() - started

    def kill(self, name: str) -> None:
        """A crash: SIGKILL, nothing flushed."""
        service = self.service(name)
        process.stop(service.pidfile, sig=signal.SIGKILL, timeout=10)

    def stop(self, name: str) -> None:
        """An orderly shutdown, as an operator stops it."""
        service = self.service(name)
        process.stop(service.pidfile, sig=signal.Signals[service.stop_signal_name], timeout=30)

    def stall(self, name: str) -> None:
        """The service hangs: its process is frozen (SIGSTOP), connections stay open."""
        os.kill(self.pid(name), signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.pid(name), signal.SIGCONT)

    def down(self) -> None:
        for name in (s.name for s in self.stack.services):
            with contextlib.suppress(ProcessLookupError):
                if pid := self.service(name).pid():
                    os.kill(pid, signal.SIGCONT)
        self.stack.down()

    def env(self, **more: str) -> dict[str, str]:
        """What a daemon of this stack runs with: the test process's environment without its
        uoom settings (they name the shared stack), then this stack's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("UOOM_") and k not in SEED_NAMES}
        env.update(
            UOOM_HOME=str(self.home),
            UOOM_DATABASE_URL=self.dsn,
            UOOM_REDIS_URL=self.settings.redis_url.get_secret_value(),
            UOOM_KAFKA_BOOTSTRAP=self.settings.kafka_bootstrap,
            DYNAMODB_ENDPOINT=self.settings.dynamodb_endpoint,
            UOOM_API_REQUEST_TIMEOUT_MS=str(int(REQUEST_DEADLINE_S * 1000)),
            UOOM_RELAY_POLL_INTERVAL="1",
            UOOM_RELAY_RETRY_BASE_SECONDS="0.2",
            UOOM_API_WORKERS="1",
            # the suite's policy (tests/conftest.py: an order's channel at its creation)
            UOOM_DISPATCH_POLICY=os.environ.get("UOOM_DISPATCH_POLICY", "rolling"),
            PYTHONUNBUFFERED="1",
        )
        env.update(more)
        return env


# -- the daemons as processes -----------------------------------------------------------------

READY_PATH = {"serve": "/healthz", "optimizer": "/healthz", "relay": "/api/v1/metrics"}
PORT_SETTING = {"serve": "UOOM_API_PORT", "optimizer": "UOOM_OPTIMIZER_PORT", "relay": "UOOM_RELAY_METRICS_PORT"}


@dataclass
class Daemon:
    """One `python -m commands serve|relay|optimizer` process: restartable on the same port."""

    kind: str
    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 120) -> None:
        assert not self.alive, f"{self.name} is running"
        env = dict(self.env, **{PORT_SETTING[self.kind]: str(self.port)})
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "commands", self.kind], cwd=REPO, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.starts += 1
        started = time.monotonic()
        _wait_until_answers(self.url + READY_PATH[self.kind], self.proc, self.log, timeout=timeout)
        log.info("%s (pid %d) answers after %.1f s", self.name, self.proc.pid, time.monotonic() - started)

    async def astart(self, timeout: float = 120) -> None:
        await asyncio.to_thread(self.start, timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing drained."""
        if self.proc is not None:
            _stop(self.proc, signal.SIGKILL)

    def stop(self) -> int:
        """SIGTERM, as an operator or a supervisor stops it; the exit code."""
        assert self.proc is not None
        return _stop(self.proc)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log, lines)


class Daemons:
    """The daemons of one test; every one stopped by its pid at the end."""

    def __init__(self, stack: FaultStack, log_dir: Path) -> None:
        self.stack, self.log_dir = stack, log_dir
        self.all: list[Daemon] = []

    def make(self, kind: str, name: str, **env: str) -> Daemon:
        port = free_ports(low=20000, high=32000)  # below the ephemeral range: restarted on it
        daemon = Daemon(kind, name, port, self.stack.env(**env), self.log_dir / f"{name}-{port}.log")
        self.all.append(daemon)
        return daemon

    async def start(self, kind: str, count: int = 1, **env: str) -> list[Daemon]:
        """`count` daemons of `kind`, started side by side."""
        made = [self.make(kind, f"{kind}-{len(self.all)}", **env) for _ in range(count)]
        await asyncio.gather(*(d.astart() for d in made))
        return made

    async def platform(
        self, apis: int = 1, relays: int = 1, optimizers: int = 1, **env: str
    ) -> dict[str, list[Daemon]]:
        """Optimizers first; each API process talks to one of them (round robin), or, without
        one, to a port where nothing listens (every order takes the fallback)."""
        opts = await self.start("optimizer", optimizers, **env) if optimizers else []
        made: list[Daemon] = []
        for i in range(apis):
            optimizer = opts[i % len(opts)].url if opts else f"http://127.0.0.1:{free_ports()}"
            made.append(self.make("serve", f"serve-{len(self.all)}", **(env | {"UOOM_OPTIMIZER_URL": optimizer})))
        await asyncio.gather(*(d.astart() for d in made))
        return {"serve": made, "relay": await self.start("relay", relays, **env) if relays else [], "optimizer": opts}

    def stop_all(self) -> None:
        for daemon in self.all:
            if daemon.alive:
                daemon.stop()


# -- the steady load --------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    kind: str  # create, status, change
    status: int  # HTTP status; 0: no answer (connection refused or reset, timeout)
    sent: float  # time.monotonic() when sent
    seconds: float
    url: str
    order_id: str | None = None
    key: str | None = None  # the Idempotency-Key of a create
    error: str | None = None


@dataclass
class SteadyLoad:
    """Creates at `rate` per second on a fixed schedule (open loop), each with an Idempotency-Key
    and retried with the same key as a real client would (after a 503, a 5xx or no answer, up to
    `give_up_s`); every `change_every`-th created order is moved to CONFIRMED, and a status read
    follows every create. Requests go round robin to `urls`; a client that gets no answer tries
    the next URL (what a load balancer does). Every answer is recorded."""

    urls: list[str]
    api_key: str
    rate: float = RATE
    change_every: int = 3
    give_up_s: float = 60.0
    timeout_s: float = HANG_S
    answers: list[Answer] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)  # key, first id, other id
    given_up: list[str] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _turn: int = 0

    @property
    def accepted_ids(self) -> list[str]:
        return sorted(set(self.accepted.values()))

    def _url(self) -> str:
        self._turn += 1
        return self.urls[self._turn % len(self.urls)]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SteadyLoad]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=KEEPALIVE_S)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with httpx.AsyncClient(headers=headers, timeout=self.timeout_s, limits=limits) as client:
            pacer = asyncio.create_task(self._pace(client))
            log.info("load: %.0f creates/s to %s", self.rate, ", ".join(self.urls))
            try:
                yield self
            finally:
                pacer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pacer
                # the requests in flight finish (or give up): their answers count
                if self._tasks:
                    log.info("load: stopped; waiting for %d requests in flight", len(self._tasks))
                    await asyncio.wait(self._tasks, timeout=self.give_up_s + self.timeout_s)
                log.info("load: %d accepted, answers by status %s", len(self.accepted), self.by_status())

    async def _pace(self, client: httpx.AsyncClient) -> None:
        start, n = time.monotonic(), 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n / self.rate - time.monotonic()))
            task = asyncio.create_task(self._order(client, n))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _call(self, client: httpx.AsyncClient, kind: str, method: str, path: str,
                    url: str | None = None, **kwargs: Any) -> tuple[Answer, httpx.Response | None]:  # fmt: skip
        base = url or self._url()
        sent = time.monotonic()
        try:
            response = await client.request(method, base + path, **kwargs)
        except httpx.HTTPError as exc:
            answer = Answer(kind, 0, sent, time.monotonic() - sent, base, error=type(exc).__name__)
            self.answers.append(answer)
            return answer, None
        order_id = None
        if response.status_code < 300 and kind in ("create", "status"):
            body = response.json()
            order_id = body.get("id") or body.get("orderId")
        key = kwargs.get("headers", {}).get("Idempotency-Key")
        answer = Answer(kind, response.status_code, sent, time.monotonic() - sent, base, order_id, key)
        self.answers.append(answer)
        return answer, response

    async def _order(self, client: httpx.AsyncClient, n: int) -> None:
        key = str(uuid.uuid4())
        body = order_body(uuid.uuid4(), restaurant_index=n % 5)
        deadline = time.monotonic() + self.give_up_s
        while True:
            answer, _ = await self._call(client, "create", "POST", "/api/orders", json=body,
                                         headers={"Idempotency-Key": key})  # fmt: skip
            if answer.status == 201 and answer.order_id:
                first = self.accepted.setdefault(key, answer.order_id)
                if first != answer.order_id:
                    self.duplicates.append((key, first, answer.order_id))
                break
            if 400 <= answer.status < 500 and answer.status != 429:
                return
            if time.monotonic() > deadline:
                self.given_up.append(key)
                return
            await asyncio.sleep(0.25 + random.random() * 0.25)  # a client's back-off, jittered
        order_id = answer.order_id
        await self._call(client, "status", "GET", f"/api/orders/{order_id}/status")
        if n % self.change_every == 0:
            await self._call(client, "change", "PATCH", f"/api/orders/{order_id}/status",
                             json={"status": "CONFIRMED"}, headers={"If-Match": '"1"'})  # fmt: skip

    def between(self, start: float, end: float = float("inf")) -> list[Answer]:
        return [a for a in self.answers if start <= a.sent < end]

    def by_status(self, answers: Iterable[Answer] | None = None) -> dict[str, int]:
        counts = Counter(str(a.status) for a in (self.answers if answers is None else answers))
        return dict(sorted(counts.items()))

    def first_success_after(self, moment: float, kind: str = "create") -> float | None:
        """Seconds from `moment` to the first 2xx answer of a request sent at or after it."""
        done = [a.sent + a.seconds for a in self.answers if a.kind == kind and a.sent >= moment and a.status < 300
                and a.status]  # fmt: skip
        return min(done) - moment if done else None


def misbehaviour(answers: Iterable[Answer], *, unreachable_ok: bool = False) -> list[str]:
    """What the API must never do under a fault, one line per kind of problem with its count and
    first examples: a 5xx other than 503, a 503 slower than QUICK_S, a hang (no answer within
    HANG_S), or no answer at all (unless the process it was sent to had been killed:
    `unreachable_ok`). How fast the 2xx were is not judged here: speed is measured in bench/."""
    found: dict[str, list[str]] = {}
    for a in answers:
        if a.status == 0 and not (unreachable_ok and a.error in ("ConnectError", "RemoteProtocolError", "ReadError")):
            what = f"{a.kind}: no answer ({a.error})"
        elif a.status >= 500 and a.status != 503:
            what = f"{a.kind}: {a.status}"
        elif a.status == 503 and a.seconds > QUICK_S:
            what = f"{a.kind}: 503 slower than {QUICK_S} s"
        else:
            continue
        found.setdefault(what, []).append(f"{a.seconds:.2f} s at +{a.sent % 1000:.1f}")
    return [f"{what}: {len(seen)} times, e.g. {', '.join(seen[:3])}" for what, seen in found.items()]


# -- the books and the recovery ---------------------------------------------------------------


async def outbox_drained(dsn: str, up_to: datetime, timeout: float = 60) -> float | None:
    """Seconds until every outbox event written up to `up_to` is published (None: not in `timeout`)."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        while time.monotonic() - started < timeout:
            left = await conn.fetchval(
                "SELECT count(*) FROM outbox_events WHERE NOT processed AND created_at <= $1", up_to
            )
            if left == 0:
                log.info("outbox drained up to %s in %.1f s", up_to.time(), time.monotonic() - started)
                return time.monotonic() - started
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    return None


async def check_books(stack: FaultStack, load: SteadyLoad, since: datetime, settle_s: float = 30.0) -> Any:
    """Every accepted order in PostgreSQL, its events on Kafka in per-order order (duplicates only
    with the same event id), the read model converged; and no idempotency key got two orders."""
    from uoom.books import audit

    assert not load.duplicates, f"one Idempotency-Key, two orders: {load.duplicates[:5]}"
    assert not load.given_up, f"{len(load.given_up)} creates never got an answer within {load.give_up_s} s"
    books = await audit(stack.settings, load.accepted_ids, since=since, settle_s=settle_s)
    log.info("%s", "; ".join(books.lines()))
    assert books.ok, "\n".join(books.lines())
    assert books.orders == len(load.accepted_ids)
    return books


def record(name: str, *, load: SteadyLoad, fault_s: float, recovery: dict[str, float | None],
           books_s: float | None = None, problems: list[str] | None = None,
           notes: str = "") -> dict[str, Any]:  # fmt: skip
    """One entry of bench/reports/faults.json (replaced by name): what docs/reliability.md quotes.
    Test processes may run side by side: the file is locked while it is rewritten."""
    entry = {
        "name": name,
        "loadRatePerSecond": load.rate,
        "faultSeconds": round(fault_s, 2),
        "recoverySeconds": {k: None if v is None else round(v, 2) for k, v in recovery.items()},
        "booksAuditSeconds": None if books_s is None else round(books_s, 2),
        "accepted": len(load.accepted_ids),
        "requestsByStatus": load.by_status(),
        "apiProblems": problems or [],  # what misbehaviour() found (the test fails on any)
        "notes": notes,
        "measuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, shared",
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entries = json.loads(REPORT.read_text()) if REPORT.exists() else []
        except ValueError:
            entries = []
        entries = [e for e in entries if e.get("name") != name] + [entry]
        REPORT.write_text(json.dumps(sorted(entries, key=lambda e: e["name"]), indent=2) + "\n")
    return entry
