"""The dashboard's data layer (tui/sources.py) against the real stack with no daemon running: the
daemons are DOWN rows with their error, the PostgreSQL and Redis numbers are exactly what the
stores hold, a source that fails or hangs costs its timeout and recovers by itself, and `uoom dash
--once --json` prints the documented shape."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from typer.testing import CliRunner

from commands.main import app
from tests.integration.relay_support import db, relay_dsn, write_events
from tui.model import DOWN, UP, Snapshot
from tui.sources import DashboardSources
from uoom import demo, rankings
from uoom.channels import enabled_channels
from uoom.config import Settings
from uoom.domain.channels import Channel, Weights
from uoom.stores import outbox

__all__ = ["relay_dsn"]  # fixtures

TIMEOUT = 0.5  # each source's bound in the tests of sources that do not answer
# In the tests of sources that do answer: a first read connects and imports, which on a loaded
# two-core machine (the whole suite beside it) can take longer than 0.5 s.
UP_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test's own, on a free port: stopped and started by the test."""

    def __init__(self, log: Path) -> None:
        self.port, self.log = free_port(), log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # an outage, not a shutdown
            self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def dash_settings(settings: Settings, dsn: str, redis_url: str, **more: Any) -> Settings:
    """The test's stores; daemons at ports where nothing listens."""
    closed = {name: f"http://127.0.0.1:{free_port()}" for name in ("api", "optimizer", "relay")}
    values: dict[str, Any] = {"database_url": SecretStr(dsn), "redis_url": SecretStr(redis_url),
                              "api_url": closed["api"], "optimizer_url": closed["optimizer"],
                              "relay_url": closed["relay"], **more}  # fmt: skip
    return settings.model_copy(update=values)


@contextlib.asynccontextmanager
async def sources(settings: Settings, timeout: float = TIMEOUT, **options: Any) -> AsyncIterator[DashboardSources]:
    async with DashboardSources(settings, timeout=timeout, **options) as opened:
        yield opened


async def ranked_demo_channels(dsn: str, redis: aioredis.Redis, weights: Weights) -> list[Channel]:
    """The demo channels in the registry, ranked in Redis with `weights`."""
    async with db(dsn) as pool:
        async with pool.acquire() as conn:
            await demo.load(conn)
        channels = await enabled_channels(pool)
    await rankings.refresh(redis, channels, weights)
    return channels


@pytest.fixture
async def silent_daemon() -> AsyncIterator[str]:
    """The URL of a server that accepts connections and never answers."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def health(snapshot: Snapshot) -> dict[str, Any]:
    return {row.name: row for row in snapshot.health}


async def timed_fetch(opened: DashboardSources) -> tuple[Snapshot, float]:
    started = time.perf_counter()
    snapshot = await opened.fetch()
    return snapshot, time.perf_counter() - started


async def test_with_no_daemon_running_each_is_down_with_its_error_and_the_stores_are_up(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis
) -> None:
    config = dash_settings(settings, relay_dsn, private_redis.url)
    async with sources(config) as opened:
        snapshot, seconds = await timed_fetch(opened)
    rows = health(snapshot)
    assert list(rows) == ["postgres", "redis", "kafka", "dynamodb", "api", "optimizer", "relay"]
    for name in ("api", "optimizer", "relay"):
        url = config.service_urls()[name]
        assert rows[name].state == DOWN, rows[name]
        assert rows[name].error == f"{name} not answering at {url}{'/api/v1' if name == 'relay' else '/api'}" \
                                   f"/metrics (ClientConnectorError)"  # fmt: skip
    assert all(rows[name].state == UP for name in ("postgres", "redis", "kafka", "dynamodb")), rows
    assert rows["postgres"].detail.startswith("PostgreSQL ")
    assert [row.latency for row in snapshot.latency] == [None] * 4
    assert {row.level for row in snapshot.latency} == {"idle"}
    assert snapshot.requests_per_second is None and snapshot.optimizer.solve_p99_ms is None
    assert snapshot.outbox.pending == 0 and snapshot.outbox.publish_rate is None  # the table, not the relay
    assert seconds < 3 * TIMEOUT + 1, seconds


async def test_the_outbox_panel_is_the_table_exactly(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis
) -> None:
    orders = [(uuid.uuid4(), 1) for _ in range(5)]
    async with db(relay_dsn) as pool:
        await write_events(pool, orders[:2], created_at=None)
        async with pool.acquire() as conn, conn.transaction():
            claimed = {e.aggregate_id: e for e in await outbox.claim(conn, 10, 0)}
            first, second = (claimed[order] for order, _ in orders[:2])
            await outbox.record(conn, [], [(first, 600.0, "refused")], [(second, "poison")])
        await write_events(pool, orders[2:])
        expected = await outbox.status(pool)
    async with sources(dash_settings(settings, relay_dsn, private_redis.url), UP_TIMEOUT) as opened:
        first, second = await asyncio.gather(opened.fetch(), opened.fetch())  # taken in turn, not at once
        shown = second.outbox
        series = opened.trends.series("outbox.pending", 10)
    assert health(first)["postgres"].state == health(second)["postgres"].state == UP
    assert replace(first.outbox, lag_seconds=None) == replace(shown, lag_seconds=None)  # the lag grew meanwhile
    assert (shown.pending, shown.in_backoff, shown.dead_letters_open) == (4, 1, 1)
    assert (expected.pending, expected.in_backoff, expected.dead_letters_open) == (4, 1, 1)
    assert shown.lag_seconds is not None and shown.lag_seconds >= expected.lag_seconds
    assert series == [4.0, 4.0]


async def test_the_ranking_is_redis_order_with_scores_loads_and_registry_capacity(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis
) -> None:
    redis = aioredis.from_url(private_redis.url)
    channels = await ranked_demo_channels(relay_dsn, redis, await rankings.set_weights(redis, {"cost": 1}))
    await rankings.move_load(redis, str(uuid.uuid4()), "own-bikes")
    await rankings.move_load(redis, str(uuid.uuid4()), "own-bikes")
    try:
        async with sources(dash_settings(settings, relay_dsn, private_redis.url), UP_TIMEOUT) as opened:
            cheap = (await opened.fetch()).channels
            cheap_in_redis = await rankings.ranking(redis)
            await rankings.refresh(redis, channels, await rankings.set_weights(redis, {"quality": 1}))
            best = (await opened.fetch()).channels
            best_in_redis = await rankings.ranking(redis)
    finally:
        await redis.aclose()
    for shown, stored in ((cheap, cheap_in_redis), (best, best_in_redis)):
        assert [(c.channel_id, c.score) for c in shown.ranking] == [(r["channelId"], r["score"]) for r in stored]
        assert [c.criteria for c in shown.ranking] == [{k: r[k] for k in ("cost", "latency", "quality",
                                                                          "capacity")} for r in stored]  # fmt: skip
    assert cheap.ranking[0].channel_id == "restaurant-self"  # the cheapest, as the registry says
    assert best.ranking[0].channel_id == "partner-premium"  # the best on-time rate
    assert cheap.weights == {"cost": 1.0, "time": 0.0, "quality": 0.0, "capacity": 0.0}
    assert best.weights == {"cost": 0.0, "time": 0.0, "quality": 1.0, "capacity": 0.0}
    bikes = next(c for c in cheap.ranking if c.channel_id == "own-bikes")
    assert (bikes.load, bikes.capacity) == (2, 40)
    assert set(bikes.criteria) == {"cost", "latency", "quality", "capacity"}
    assert [c.rank for c in cheap.ranking] == list(range(1, 9))


COPY_CHANNEL = """
INSERT INTO channels (id, name, kind, capacity, base_cost, cost_per_km, speed_kmh, pickup_latency_min, radius_km,
                      quality)
SELECT $1, name || ' 2', kind, capacity, base_cost, cost_per_km, speed_kmh, pickup_latency_min, radius_km, quality
FROM channels WHERE id = $2
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_registry_is_read_again_every_30_s_or_at_once_for_a_channel_it_did_not_name(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis
) -> None:
    redis = aioredis.from_url(private_redis.url)
    channels = await ranked_demo_channels(relay_dsn, redis, Weights())
    clock = Clock()

    def capacity(snapshot: Snapshot, channel_id: str) -> int | None:
        return next(c.capacity for c in snapshot.channels.ranking if c.channel_id == channel_id)

    try:
        async with sources(dash_settings(settings, relay_dsn, private_redis.url), UP_TIMEOUT, clock=clock) as opened:
            assert capacity(await opened.fetch(), "own-bikes") == 40
            async with db(relay_dsn) as pool:
                await pool.execute("UPDATE channels SET capacity = 41 WHERE id = 'own-bikes'")
            clock.now += 29
            assert capacity(await opened.fetch(), "own-bikes") == 40  # read 29 s ago: not again yet
            clock.now += 1
            assert capacity(await opened.fetch(), "own-bikes") == 41
            async with db(relay_dsn) as pool:
                await pool.execute("UPDATE channels SET capacity = 42 WHERE id = 'own-bikes'")
                await pool.execute(COPY_CHANNEL, "own-bikes-2", "own-bikes")
                channels = await enabled_channels(pool)
            await rankings.refresh(redis, channels, Weights())
            clock.now += 1
            first = await opened.fetch()  # names own-bikes-2: the registry is due at the next fetch
            assert capacity(first, "own-bikes-2") is None
            second = await opened.fetch()
    finally:
        await redis.aclose()
    assert capacity(second, "own-bikes-2") == capacity(second, "own-bikes") == 42  # copied after the update


async def test_redis_going_down_turns_its_row_down_within_the_timeout_and_back_up_by_itself(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis
) -> None:
    async with sources(dash_settings(settings, relay_dsn, private_redis.url), UP_TIMEOUT) as opened:
        assert health(await opened.fetch())["redis"].state == UP
        private_redis.stop()
        down, seconds = await timed_fetch(opened)
        assert health(down)["redis"].state == DOWN and health(down)["redis"].error, health(down)["redis"]
        assert down.channels.ranking == [] and down.channels.weights is None
        assert health(down)["postgres"].state == UP  # the rest still answers
        assert seconds < TIMEOUT + 0.5, seconds
        private_redis.start()
        back = await opened.fetch()
    assert health(back)["redis"].state == UP, health(back)["redis"]
    assert back.channels.weights is not None


class Proxy:
    """A TCP hop between the dashboard and PostgreSQL that the test can cut (connections dropped,
    the port refusing) and restore on the same port: an outage of PostgreSQL for the dashboard alone."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port = target_port, free_port()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        self._writers.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            sink.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


async def test_postgres_going_away_is_down_and_the_dashboard_reconnects_when_it_answers_again(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis
) -> None:
    head, _, tail = relay_dsn.rpartition("@")
    host_port, _, database = tail.partition("/")
    proxy = Proxy(int(host_port.rpartition(":")[2] or 5432))
    await proxy.start()
    async with sources(
        dash_settings(settings, f"{head}@127.0.0.1:{proxy.port}/{database}", private_redis.url)
    ) as opened:
        assert health(await opened.fetch())["postgres"].state == UP
        await proxy.cut()
        down, seconds = await timed_fetch(opened)
        row = health(down)["postgres"]
        assert row.state == DOWN and row.error, row
        assert down.outbox.pending is None and seconds < TIMEOUT + 0.5
        still_down = health(await opened.fetch())["postgres"]  # a new connection is refused
        assert still_down.state == DOWN and still_down.error, still_down
        await proxy.start()
        back = await opened.fetch()
        await proxy.cut()
    assert health(back)["postgres"].state == UP and back.outbox.pending == 0


async def test_a_daemon_that_accepts_but_never_answers_costs_the_timeout(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis, silent_daemon: str
) -> None:
    config = dash_settings(settings, relay_dsn, private_redis.url, api_url=silent_daemon)
    async with sources(config) as opened:
        snapshot, seconds = await timed_fetch(opened)
    api = health(snapshot)["api"]
    assert api.state == DOWN and api.error == f"api not answering at {silent_daemon}/api/metrics (TimeoutError)"
    assert TIMEOUT <= seconds < TIMEOUT + 0.5, seconds


async def test_closing_while_a_fetch_is_in_flight_cancels_it_and_closes_cleanly(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis, silent_daemon: str
) -> None:
    config = dash_settings(settings, relay_dsn, private_redis.url, api_url=silent_daemon)
    async with DashboardSources(config, timeout=5.0) as opened:
        in_flight = asyncio.create_task(opened.fetch())
        await asyncio.sleep(0.3)  # the API read is waiting on the silent server
        started = time.perf_counter()
    closing = time.perf_counter() - started
    with pytest.raises(asyncio.CancelledError):
        await in_flight
    assert closing < 2.0, closing


async def test_dax_when_configured_is_a_row_of_its_own(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis
) -> None:
    config = dash_settings(settings, relay_dsn, private_redis.url, dax_endpoint=f"127.0.0.1:{free_port()}")
    async with sources(config) as opened:
        rows = health(await opened.fetch())
    assert list(rows)[:5] == ["postgres", "redis", "kafka", "dynamodb", "dax"]
    assert rows["dax"].state == DOWN and rows["dax"].error, rows["dax"]


# The documented shape of `uoom dash --once --json` (docs/dashboard.md)
SNAPSHOT_KEYS = ["takenAt", "refreshSeconds", "health", "latency", "requestsPerSecond", "outbox", "channels",
                 "optimizer", "problems"]  # fmt: skip
HEALTH_KEYS = {"name", "state", "detail", "error"}
LATENCY_KEYS = {"group", "latency", "errorRate", "sloMs", "level"}
OUTBOX_KEYS = {"pending", "lagSeconds", "inBackoff", "deadLettersOpen", "publishRate", "commitToAckP99Ms"}
CHANNEL_KEYS = {"rank", "channelId", "score", "criteria", "load", "capacity"}
OPTIMIZER_KEYS = {"solveP99Ms", "batchOrdersP50", "batchOrdersP99", "statusMix", "apiFallbackRate", "breaker",
                  "reassignmentsPerMinute", "tripPairs", "tripJoins", "ridingTwoShare", "dispatchPolicy",
                  "heldPerMinute", "heldDueUnplaced"}  # fmt: skip


async def test_dash_once_json_prints_the_documented_shape_and_exits_1_when_a_source_is_down(
    relay_dsn: str, settings: Settings, private_redis: PrivateRedis
) -> None:
    redis = aioredis.from_url(private_redis.url)
    await ranked_demo_channels(relay_dsn, redis, Weights())
    await redis.aclose()
    config = dash_settings(settings, relay_dsn, private_redis.url)
    env = {"UOOM_DATABASE_URL": relay_dsn, "UOOM_REDIS_URL": private_redis.url, "UOOM_API_URL": config.api_url,
           "UOOM_OPTIMIZER_URL": config.optimizer_url, "UOOM_RELAY_URL": config.relay_url, "UOOM_DEBUG": "false",
           "UOOM_DASH_SLO_STATUS_MS": "7"}  # fmt: skip
    result = await asyncio.to_thread(CliRunner().invoke, app, ["dash", "--once", "--json"], env=env)
    assert result.exit_code == 1, result.stderr
    assert result.stderr.strip() == "down: api, optimizer, relay (the health rows say why)"
    document = orjson.loads(result.stdout)
    assert list(document) == SNAPSHOT_KEYS
    assert all(set(row) == HEALTH_KEYS for row in document["health"])
    assert [row["group"] for row in document["latency"]] == ["create", "status", "batch", "other"]
    assert all(set(row) == LATENCY_KEYS for row in document["latency"])
    assert document["latency"][1]["sloMs"] == 7.0
    assert set(document["outbox"]) == OUTBOX_KEYS and document["outbox"]["pending"] == 0
    assert set(document["channels"]) == {"ranking", "weights"} and len(document["channels"]["ranking"]) == 8
    assert all(set(row) == CHANNEL_KEYS for row in document["channels"]["ranking"])
    assert set(document["optimizer"]) == OPTIMIZER_KEYS
    tables = await asyncio.to_thread(CliRunner().invoke, app, ["dash", "--once"], env=env)
    assert tables.exit_code == 1 and "own-bikes" in tables.stdout and "relay" in tables.stdout


def test_dash_without_once_needs_a_terminal_and_json_needs_once() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["dash"]).exit_code == 2
    result = runner.invoke(app, ["dash", "--json"])
    assert result.exit_code == 2 and "--once" in result.stderr
