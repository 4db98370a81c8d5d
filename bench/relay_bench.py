"""Relay benchmark: commit -> Kafka ack latency under open-loop load, and backlog drain rate.

    .venv/bin/python -m bench.relay_bench [--rate 200] [--seconds 60] [--backlog 100000]

Runs `uoom relay` as a process (its default settings unless flags say otherwise) against the local
stack, in a database, topic and DynamoDB table of its own, all removed afterwards.

1. Open loop: events are committed at a fixed rate (one transaction each, as the API does),
   whatever the relay does. Latency is taken from the commit (client clock, right after COMMIT
   returned) to the ack (`published_at`, set by the relay's UPDATE right after the batch was
   acknowledged; same host clock), and also to the arrival at a real Kafka consumer, and from each event's
   intended commit time (so a slow writer cannot hide latency either).
2. Backlog: N events (5 per order, interleaved) are written while no relay runs, then a relay
   starts; drain rate = N / time from its first to its last publish (and wall time including the
   process start).

Scenarios (both parts): `current` = projector on and the read model already holding the
versions, as the API's write-through leaves it (the steady state); `missing` = projector on and
every event a repair write (DynamoDB was down; worst case); `off` = `uoom relay --no-projector`.
The machine is shared: each scenario records the load average before and after it.

Targets (DESIGN.md): commit -> ack P99 <= 50 ms at 200 events/s; drain >= 5,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import SecretStr

from bench.common import percentiles, save
from uoom import migrate
from uoom.config import Settings
from uoom.provision import ensure_status_table
from uoom.stores.aws import dynamodb_client
from uoom.stores.kafka import consumer as kafka_consumer
from uoom.stores.readmodel import to_item

ROOT = Path(__file__).resolve().parents[1]
INSERT = """INSERT INTO outbox_events (id, type, aggregate_id, aggregate_type, aggregate_version, data)
            VALUES ($1, 'order.status_changed', $2, 'order', $3, $4)"""
PROJECTOR_WAIT_SECONDS = 300.0
SCENARIOS = {
    "current": "projector on, items already current (as the API's write-through leaves them; steady state)",
    "missing": "projector on, items missing (every event is a repair write; worst case)",
    "off": "relay --no-projector",
}
STATUSES = ["PENDING", "CONFIRMED", "PREPARING", "READY_FOR_PICKUP", "PICKED_UP", "DELIVERED"]


def order_data(order: uuid.UUID, version: int) -> dict[str, Any]:
    """A realistic order snapshot (~700 bytes of JSON), as every order event carries one."""
    now = datetime.now(UTC).isoformat()
    return {
        "order": {
            "id": str(order),
            "customerId": str(uuid.UUID(int=order.int ^ 0xFFFF)),
            "restaurantId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
            "status": STATUSES[min(version - 1, len(STATUSES) - 1)],
            "version": version,
            "items": [
                {"menuItemId": f"item-{i}", "name": "Margherita pizza", "quantity": 2, "price": "12.50"}
                for i in range(3)
            ],
            "deliveryLocation": {"latitude": 52.52, "longitude": 13.405, "address": "Unter den Linden 1, Berlin"},
            "total": "75.00",
            "channelId": "own-fleet-1",
            "estimatedDeliveryTime": now,
            "createdAt": now,
            "updatedAt": now,
        },
        "previousStatus": STATUSES[min(max(version - 2, 0), len(STATUSES) - 1)],
    }


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_delta(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
    return {name: round(1000 * (used - before.get(name, 0.0)) / events, 3) for name, used in after.items()}


async def settle(done: Any, seconds: float) -> None:
    """Wait until `done()` or `seconds` passed, whichever comes first."""
    deadline = time.monotonic() + seconds
    for _ in iter(lambda: done() or time.monotonic() > deadline, True):
        await asyncio.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Scenarios:
    """Each scenario gets a fresh topic and projector group, so it reads only its own events."""

    def __init__(self, settings: Settings, admin: AIOKafkaAdminClient) -> None:
        self.settings, self.admin, self.topics = settings, admin, [settings.kafka_dlq_topic]

    async def fresh(self, label: str) -> Settings:
        topic = f"{self.settings.kafka_topic}.{label}"
        await self.admin.create_topics([NewTopic(topic, self.settings.kafka_partitions, 1)])
        self.topics.append(topic)
        return self.settings.model_copy(
            update={"kafka_topic": topic, "relay_projector_group": f"{self.settings.relay_projector_group}-{label}"}
        )


@contextlib.asynccontextmanager
async def environment(base: Settings) -> AsyncIterator[Scenarios]:
    """A database, topics and a DynamoDB table of the benchmark's own, removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    server = base.database_url.get_secret_value().rsplit("/", 1)[0]
    dbname = f"bench_relay_{suffix}"
    admin_db = await asyncpg.connect(f"{server}/postgres")
    await admin_db.execute(f"CREATE DATABASE {dbname}")
    settings = base.model_copy(
        update={
            "database_url": SecretStr(f"{server}/{dbname}"),
            "kafka_topic": f"bench.relay.{suffix}",
            "kafka_dlq_topic": f"bench.relay.{suffix}.dlq",
            "dynamodb_table": f"bench-relay-{suffix}",
            "relay_projector_group": f"bench-projector-{suffix}",
        }
    )
    kafka = AIOKafkaAdminClient(bootstrap_servers=base.kafka_bootstrap)
    await kafka.start()
    scenarios = Scenarios(settings, kafka)
    try:
        await migrate.up(settings.database_url.get_secret_value())
        await kafka.create_topics([NewTopic(settings.kafka_dlq_topic, 1, 1)])
        await ensure_status_table(settings)
        yield scenarios
    finally:
        with contextlib.suppress(Exception):
            await kafka.delete_topics(scenarios.topics)
        await kafka.close()
        with contextlib.suppress(Exception):
            async with dynamodb_client(settings) as ddb:
                await ddb.delete_table(TableName=settings.dynamodb_table)
        await admin_db.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        await admin_db.close()


class RelayProcess:
    def __init__(self, settings: Settings, projector: bool, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.env = {
            **os.environ,
            "UOOM_DATABASE_URL": settings.database_url.get_secret_value(),
            "UOOM_KAFKA_TOPIC": settings.kafka_topic,
            "UOOM_KAFKA_DLQ_TOPIC": settings.kafka_dlq_topic,
            "UOOM_DYNAMODB_TABLE": settings.dynamodb_table,
            "UOOM_RELAY_PROJECTOR_GROUP": settings.relay_projector_group,
            "UOOM_RELAY_PROJECTOR": "true" if projector else "false",
            "UOOM_RELAY_METRICS_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "commands", "relay"], env=self.env, cwd=ROOT, stdout=out, stderr=out
            )
        return time.monotonic()

    async def summary(self) -> dict[str, Any] | None:
        try:
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{self.port}/api/v1/metrics") as r:
                result: dict[str, Any] = await r.json()
                return result
        except (aiohttp.ClientError, OSError):
            return None

    async def ready(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            summary = await self.summary()
            if summary and summary["status"] == "ok":
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"relay not ready; see {self.log}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU (user + system) used so far by the relay process and its projector child."""
        if self.proc is None:
            return {}
        pid = self.proc.pid
        used = {"relay": _cpu(pid)}
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                used["projector"] = _cpu(int(child))
        return used

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


async def consume(settings: Settings, into: dict[str, float], stop: asyncio.Event) -> int:
    """Arrival time of every event id on the topic (first arrival); returns duplicates seen."""
    consumer = kafka_consumer(settings, settings.kafka_topic, group_id=None, fetch_max_wait_ms=5)
    await consumer.start()
    duplicates = 0
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    key = dict(record.headers)["id"].decode()
                    if key in into:
                        duplicates += 1
                    else:
                        into[key] = now
    finally:
        await consumer.stop()
    return duplicates


async def prefill_read_model(settings: Settings, orders: list[uuid.UUID]) -> None:
    """Items already holding a newer version, as the API's write-through leaves the read model."""
    gate = asyncio.Semaphore(8)
    async with dynamodb_client(settings) as ddb:

        async def put(chunk: list[uuid.UUID]) -> None:
            items = [to_item(order_data(o, 10_000)["order"], settings.order_cache_ttl_hours) for o in chunk]
            request = {settings.dynamodb_table: [{"PutRequest": {"Item": item}} for item in items]}
            async with gate:
                while request:
                    request = (await ddb.batch_write_item(RequestItems=request)).get("UnprocessedItems") or {}

        await asyncio.gather(*(put(orders[i : i + 25]) for i in range(0, len(orders), 25)))


async def open_loop(settings: Settings, rate: float, seconds: float, scenario: str, log: Path) -> dict[str, Any]:
    total = int(rate * seconds)
    orders = [uuid.uuid4() for _ in range(max(1, total // 5))]
    if scenario == "current":
        await prefill_read_model(settings, orders)
    load_before = os.getloadavg()
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=10, max_size=20)
    await pool.execute("TRUNCATE outbox_events")  # the previous scenario's rows
    relay = RelayProcess(settings, scenario != "off", log)
    relay.start()
    arrivals: dict[str, float] = {}
    stop_consuming = asyncio.Event()
    consuming = asyncio.create_task(consume(settings, arrivals, stop_consuming))
    try:
        await relay.ready()
        await asyncio.sleep(2)  # consumer assigned, relay idle
        intended: dict[str, float] = {}
        committed: dict[str, float] = {}
        late = 0

        async def write(i: int, at: float) -> None:
            event_id = uuid.uuid4()
            order = orders[i % len(orders)]
            version = i // len(orders) + 1
            data = orjson.dumps(order_data(order, version)).decode()
            async with pool.acquire() as conn:
                await conn.execute(INSERT, event_id, order, version, data)
            committed[str(event_id)] = time.time()
            intended[str(event_id)] = at

        tasks = set()
        cpu_before = relay.cpu_seconds()
        start_wall, start = time.time() + 0.1, time.perf_counter() + 0.1
        for i in range(total):
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                late += 1
            task = asyncio.create_task(write(i, start_wall + i / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        await settle(lambda: len(arrivals) >= total, 60)
        cpu = _cpu_delta(cpu_before, relay.cpu_seconds(), total)
        rows = await pool.fetch("SELECT id::text, extract(epoch FROM published_at)::float8 AS acked FROM outbox_events")
        acked = {r["id"]: r["acked"] for r in rows if r["acked"] is not None}
        summary = await relay.summary()
    finally:
        stop_consuming.set()
        duplicates = await consuming
        exit_code = relay.stop()
        await pool.close()

    def ms(pairs: list[float]) -> dict[str, float | None]:
        return {k: None if v is None else round(v * 1000, 2) for k, v in percentiles(pairs).items()}

    ids = list(committed)
    return {
        "scenario": scenario,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "rate": rate,
        "seconds": seconds,
        "events": total,
        "acked": sum(1 for i in ids if i in acked),
        "arrived": sum(1 for i in ids if i in arrivals),
        "duplicates": duplicates,
        "writer_late_starts": late,
        "commit_to_ack_ms": ms([acked[i] - committed[i] for i in ids if i in acked]),
        "commit_to_consumer_ms": ms([arrivals[i] - committed[i] for i in ids if i in arrivals]),
        "intended_to_consumer_ms": ms([arrivals[i] - intended[i] for i in ids if i in arrivals]),
        "intended_to_commit_ms": ms([committed[i] - intended[i] for i in ids]),
        "relay_own_created_to_ack_ms": ((summary or {}).get("latency") or {}).get("commitToAck"),
        "cpu_ms_per_event": cpu,
        "relay_exit_code": exit_code,
    }


async def backlog(settings: Settings, n: int, scenario: str, log: Path) -> dict[str, Any]:
    projector = scenario != "off"
    orders = [uuid.uuid4() for _ in range(n // 5)]
    if scenario == "current":
        await prefill_read_model(settings, orders)
    load_before = os.getloadavg()
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        await conn.execute("TRUNCATE outbox_events")
        started = time.monotonic()
        records = []
        for version in range(1, 6):  # interleaved, as a backlog built by live traffic is
            for order in orders:
                data = orjson.dumps(order_data(order, version)).decode()
                records.append((uuid.uuid4(), "order.status_changed", order, "order", version, data))
        await conn.copy_records_to_table(
            "outbox_events",
            records=records,
            columns=["id", "type", "aggregate_id", "aggregate_type", "aggregate_version", "data"],
        )
        await conn.execute("ANALYZE outbox_events")
        written_in = time.monotonic() - started
        relay = RelayProcess(settings, projector, log)
        t0 = relay.start()
        try:
            while await conn.fetchval("SELECT count(*) FROM outbox_events WHERE NOT processed"):
                if relay.proc is not None and relay.proc.poll() is not None:
                    raise RuntimeError(f"relay exited; see {log}")
                await asyncio.sleep(0.1)
            wall = time.monotonic() - t0
            cpu = _cpu_delta({}, relay.cpu_seconds(), n)
            first, last = await conn.fetchrow(
                "SELECT extract(epoch FROM min(published_at))::float8, extract(epoch FROM max(published_at))::float8 "
                "FROM outbox_events"
            )
            projector_caught_up = None
            if projector:
                while True:
                    summary = await relay.summary() or {}
                    p = summary.get("projector") or {}
                    done = sum(p.get(k, 0) for k in ("applied", "current", "stale"))
                    if done >= len(orders) and p.get("lag", 1) == 0:
                        projector_caught_up = round(time.monotonic() - t0, 2)
                        break
                    if time.monotonic() - t0 > PROJECTOR_WAIT_SECONDS:
                        break
                    await asyncio.sleep(0.25)
            final = await relay.summary()
        finally:
            exit_code = relay.stop()
    finally:
        await conn.close()
    span = last - first
    return {
        "scenario": scenario,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "events": n,
        "orders": len(orders),
        "projector": projector,
        "written_in_seconds": round(written_in, 2),
        "drain_seconds_first_to_last_publish": round(span, 2),
        "drain_rate_events_per_second": round(n / span) if span > 0 else None,
        "wall_seconds_including_process_start": round(wall, 2),
        "wall_rate_events_per_second": round(n / wall),
        "projector_caught_up_after_seconds": projector_caught_up,
        "cpu_ms_per_event_until_drained": cpu,
        "relay_published": ((final or {}).get("relay") or {}).get("published"),
        "relay_exit_code": exit_code,
    }


async def verify_topic(settings: Settings, expected: int) -> dict[str, int]:
    arrivals: dict[str, float] = {}
    stop = asyncio.Event()
    task = asyncio.create_task(consume(settings, arrivals, stop))
    await settle(lambda: len(arrivals) >= expected, 120)
    await asyncio.sleep(1)  # duplicates, if any, would come now
    stop.set()
    duplicates = await task
    return {"expected": expected, "distinct_on_topic": len(arrivals), "duplicates": duplicates}


def versions() -> dict[str, str]:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    dirty = "+dirty" if run("git", "status", "--porcelain") else ""
    return {"git": run("git", "rev-parse", "--short", "HEAD") + dirty}


async def main(args: argparse.Namespace) -> None:
    base = Settings()
    logs = Path(args.logs)
    report: dict[str, Any] = {"versions": versions(), "settings": {
        "relay_batch_size": base.relay_batch_size, "relay_concurrency": base.relay_concurrency,
        "relay_poll_interval": base.relay_poll_interval, "kafka_partitions": base.kafka_partitions}}  # fmt: skip
    async with environment(base) as scenarios:
        report["open_loop"] = []
        for scenario in args.open_loop.split(",") if args.seconds > 0 else ():
            print(f"open loop ({scenario}): {args.rate:g} events/s for {args.seconds:g} s ...", file=sys.stderr)
            settings = await scenarios.fresh(f"open-loop-{scenario}")
            log = logs / f"relay-open-loop-{scenario}.log"
            result = await open_loop(settings, args.rate, args.seconds, scenario, log)
            report["open_loop"].append(result)
            print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
        report["backlog"] = []
        for scenario in args.backlog_scenarios.split(",") if args.backlog else ():
            print(f"backlog ({scenario}): {args.backlog} events ...", file=sys.stderr)
            settings = await scenarios.fresh(f"backlog-{scenario}")
            result = await backlog(settings, args.backlog, scenario, logs / f"relay-backlog-{scenario}.log")
            result["topic_check"] = await verify_topic(settings, args.backlog)
            report["backlog"].append(result)
            print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
    path = save("relay", report, markdown(report))
    print(path.read_text())


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Code: {report['versions']['git']}; relay settings: {report['settings']}", ""]
    for o in report.get("open_loop", []):
        lines += [
            f"## Open loop: {o['rate']:g} events/s for {o['seconds']:g} s ({o['events']} events), "
            f"read model: {SCENARIOS[o['scenario']]}",
            "",
            f"load average before / after: {_load(o['load_average_before'])} / {_load(o['load_average_after'])}",
            "",
            "| latency (ms) | p50 | p90 | p99 | p99.9 | max |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("commit_to_ack_ms", "commit_to_consumer_ms", "intended_to_consumer_ms", "intended_to_commit_ms"):
            v = o[name]
            lines.append(f"| {name} | {v['p50']} | {v['p90']} | {v['p99']} | {v['p99.9']} | {v['max']} |")
        lines += [
            "",
            f"acked {o['acked']}/{o['events']}, arrived {o['arrived']}/{o['events']}, duplicates {o['duplicates']}, "
            f"writer late starts {o['writer_late_starts']}; relay's own created->ack window: "
            f"{o['relay_own_created_to_ack_ms']}; CPU ms per event: {o['cpu_ms_per_event']}",
            "",
        ]
    for b in report.get("backlog", []):
        lines += [
            f"## Backlog: {b['events']} events, {b['orders']} orders, read model: {SCENARIOS[b['scenario']]}",
            "",
            f"- load average before / after: {_load(b['load_average_before'])} / {_load(b['load_average_after'])}",
            f"- drain rate (first to last publish): **{b['drain_rate_events_per_second']} events/s** "
            f"({b['drain_seconds_first_to_last_publish']} s)",
            f"- wall, from process start: {b['wall_rate_events_per_second']} events/s "
            f"({b['wall_seconds_including_process_start']} s)",
            f"- projector caught up after: {b['projector_caught_up_after_seconds']} s",
            f"- CPU ms per event (process start to drained): {b['cpu_ms_per_event_until_drained']}",
            f"- topic check: {b['topic_check']}",
            "",
        ]
    return "\n".join(lines)


def _load(values: Any) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop events per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="open-loop duration; 0 skips it")
    parser.add_argument(
        "--open-loop",
        default="current,missing",
        help="comma-separated open-loop scenarios: " + "; ".join(f"{k}: {v}" for k, v in SCENARIOS.items()),
    )
    parser.add_argument(
        "--backlog-scenarios", default="current,off", help="comma-separated backlog scenarios (same names)"
    )
    parser.add_argument("--backlog", type=int, default=100_000, help="backlog size; 0 skips it")
    parser.add_argument("--logs", default="/tmp/uoom-relay-bench", help="where the relay processes log")
    arguments = parser.parse_args()
    Path(arguments.logs).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(arguments))
