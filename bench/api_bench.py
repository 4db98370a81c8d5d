"""Order API benchmark: status query vs the framework floor at 500 req/s, and order creation at
100 orders/s, open-loop, against `uoom serve` as a process on the local stack.

    .venv/bin/python -m bench.api_bench [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from bench.common import save
from uoom import apikeys, demo, migrate
from uoom.config import Settings
from uoom.loadgen import RequestFactory, Run, run
from uoom.loadgen.cpu import CpuMeter, stack_pids
from uoom.loadgen.openloop import connector as loadgen_connector
from uoom.loadgen.scenarios import order_body
from uoom.provision import provision
from uoom.stack import Stack
from uoom.stores.aws import dynamodb_client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BENCH_DATABASE = "uoom_bench"
BENCH_REDIS_DB = 2
BENCH_TABLE = "uoom-bench-order-status"


async def prepare(settings: Settings, capacity_scale: int) -> tuple[Settings, str]:
    """A fresh database, Redis db and DynamoDB table for each run: orders left open by earlier
    runs would otherwise fill every channel and the optimizer's re-optimization window."""
    await Stack(settings).up()
    base = settings.database_url.get_secret_value().rsplit("/", 1)[0]
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    finally:
        await admin.close()
    redis_url = settings.redis_url.get_secret_value().rsplit("/", 1)[0] + f"/{BENCH_REDIS_DB}"
    topic = f"uoom-bench-{uuid.uuid4().hex[:8]}.order-events"  # deleted after the run
    bench = settings.model_copy(update={"database_url": SecretStr(f"{base}/{BENCH_DATABASE}"),
                                        "redis_url": SecretStr(redis_url), "dynamodb_table": BENCH_TABLE,
                                        "kafka_topic": topic, "kafka_dlq_topic": f"{topic}.dlq"})  # fmt: skip
    redis = aioredis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()
    async with dynamodb_client(bench, fail_fast=True) as ddb:
        with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
            await ddb.delete_table(TableName=BENCH_TABLE)
    dsn = bench.database_url.get_secret_value()
    await migrate.up(dsn)
    await provision(bench)
    conn = await asyncpg.connect(dsn)
    try:
        await demo.load(conn)
        await conn.execute("UPDATE channels SET capacity = capacity * $1", capacity_scale)
        _, key = await apikeys.create(conn, f"bench-{uuid.uuid4().hex[:8]}")
    finally:
        await conn.close()
    return bench, key


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A daemon; its output is dropped, or appended to UOOM_BENCH_LOGS/<command>.log when that
    directory is set (with UOOM_DEBUG=true, to see why a run went as it did)."""
    logs = os.environ.get("UOOM_BENCH_LOGS")
    out = open(os.path.join(logs, f"{args[0]}.log"), "ab") if logs else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen([sys.executable, "-m", "commands", *args], env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    finally:
        if logs:
            out.close()  # type: ignore[union-attr]  # the child holds its own copy


async def delete_topics(bench: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bench.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([bench.kafka_topic, bench.kafka_dlq_topic])
    finally:
        await admin.close()


def start_daemons(
    port: int, args: argparse.Namespace, bench: Settings
) -> tuple[dict[str, subprocess.Popen[bytes]], list[str]]:
    """The API, and with --platform the optimizer and the relay (with its projector) beside it, on
    ports of their own, as `uoom up` runs them."""
    optimizer_port, relay_port = free_port(), free_port()
    env = {"UOOM_API_RATE_LIMIT_PER_SECOND": "1000000", "UOOM_OPTIMIZER_PORT": str(optimizer_port),
           "UOOM_RELAY_METRICS_PORT": str(relay_port), "UOOM_DYNAMODB_TABLE": bench.dynamodb_table,
           "UOOM_DATABASE_URL": bench.database_url.get_secret_value(),
           "UOOM_REDIS_URL": bench.redis_url.get_secret_value(), "UOOM_KAFKA_TOPIC": bench.kafka_topic,
           "UOOM_KAFKA_DLQ_TOPIC": bench.kafka_dlq_topic,
           "UOOM_RELAY_PROJECTOR_GROUP": f"{bench.kafka_topic}.projector",
           # every order assigned at creation (what these benches measure), unless the caller set a
           # policy (platform_bench --in-time): under in-time a 60 s loop would assign nothing
           "UOOM_DISPATCH_POLICY": os.environ.get("UOOM_DISPATCH_POLICY", "rolling")}  # fmt: skip
    daemons = {"api": start(["serve", "--port", str(port), "--workers", str(args.workers)], env)}
    health = [f"http://127.0.0.1:{port}/healthz"]
    if args.platform:
        daemons |= {"optimizer": start(["optimizer"], env), "relay": start(["relay"], env)}
        health += [f"http://127.0.0.1:{optimizer_port}/healthz", f"http://127.0.0.1:{relay_port}/api/v1/metrics"]
    return daemons, health


async def outbox_drained(dsn: str) -> None:
    """With the relay running, start measuring only once the backlog of earlier runs is published."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(3000):
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox_events WHERE NOT processed)"):
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise SystemExit("the relay did not drain the outbox within 300 s")


async def wait_healthy(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(300):
        try:
            async with session.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not become healthy")


def describe(r: Run) -> dict[str, Any]:
    return r.as_json()


async def main(args: argparse.Namespace) -> None:
    bench, key = await prepare(Settings(), args.capacity_scale)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    daemons, health = start_daemons(port, args, bench)
    headers = {"Authorization": f"Bearer {key}"}
    connector = loadgen_connector()
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for url in health:
                await wait_healthy(session, url)
            if args.platform:
                await outbox_drained(bench.database_url.get_secret_value())
            ids = []
            for i in range(args.orders):  # the orders whose status is read
                async with session.post(f"{base}/api/orders", json=order_body(i), headers=headers) as r:
                    ids.append((await r.json())["id"])
            meter = CpuMeter({**{name: d.pid for name, d in daemons.items()}, **stack_pids(bench.home / "run"),
                              "bench client": os.getpid()})  # fmt: skip

            async def measured(name: str, rate: float, seconds: float, make: RequestFactory) -> Run:
                meter.start()
                result = await run(session, name, rate, seconds, make)
                result.cpu = meter.stop()
                return result

            runs = []
            for _ in range(args.repeat):  # floor and status alternate, same rate, same run
                runs.append(await measured("floor GET /healthz", args.status_rate, args.seconds,
                                      lambda i: ("GET", f"{base}/healthz", {})))  # fmt: skip
                # Steady state: clients poll orders they created recently, so the cache holds them.
                # (A cold burst of distinct orders is bounded by the read model: moto serves a few
                # hundred reads/s here, and botocore costs ~2 ms of CPU per read.)
                for oid in ids:
                    async with session.get(f"{base}/api/orders/{oid}/status", headers=headers) as r:
                        await r.read()
                runs.append(await measured("status GET /api/orders/{id}/status", args.status_rate, args.seconds,
                                      lambda i: ("GET", f"{base}/api/orders/{ids[i % len(ids)]}/status",
                                                 {"headers": headers})))  # fmt: skip
            async with session.get(f"{base}/api/metrics") as r:
                status_metrics = await r.json()
            runs.append(await measured("create POST /api/orders", args.create_rate, args.create_seconds,
                                  lambda i: ("POST", f"{base}/api/orders",
                                             {"json": order_body(10_000 + i), "headers": headers})))  # fmt: skip
            async with session.get(f"{base}/api/metrics") as r:
                create_metrics = await r.json()
    finally:
        await stop_daemons(daemons, bench)
    report(args, runs, status_metrics, create_metrics)


async def stop_daemons(daemons: dict[str, subprocess.Popen[bytes]], bench: Settings) -> None:
    """Stop the daemons a run started, then drop its topics."""
    for daemon in daemons.values():
        daemon.terminate()
    for daemon in daemons.values():
        daemon.wait(15)
    await delete_topics(bench)


def cpu_table(rows: list[dict[str, Any]]) -> str:
    """Cores each process tree used during each run (2.0 is all of this machine)."""
    names = list(rows[0]["cpu_cores"])
    lines = ["| run | " + " | ".join(names) + " | total |", "|---" * (len(names) + 2) + "|"]
    for r in rows:
        cpu = r["cpu_cores"]
        lines.append(f"| {r['name']} | " + " | ".join(f"{cpu[n]:.2f}" for n in names) + f" | {sum(cpu.values()):.2f} |")
    return "CPU, in cores, per process tree during each run:\n\n" + "\n".join(lines) + "\n\n"


def report(args: argparse.Namespace, runs: list[Run], status_metrics: dict[str, Any],
           create_metrics: dict[str, Any]) -> None:  # fmt: skip
    rows = [describe(r) for r in runs]
    floors = [r["latency_ms"]["p99"] for r in rows if r["name"].startswith("floor")]
    statuses = [r["latency_ms"]["p99"] for r in rows if r["name"].startswith("status")]
    # Each status run against the floor run just before it: machine noise moves both of a pair.
    ratios = [status / floor for floor, status in zip(floors, statuses, strict=True)]
    create = next(r for r in rows if r["name"].startswith("create"))
    verdict = {
        "status_p99_ms": statuses, "floor_p99_ms": floors, "ratios": [round(x, 2) for x in ratios],
        "status_target_met": max(ratios) <= 2 and all(not r["errors"] for r in rows[:-1]),
        "create_p99_ms": create["latency_ms"]["p99"],
        "create_target_met": create["latency_ms"]["p99"] <= 100 and not create["errors"],
    }  # fmt: skip
    lines = [
        "| run | rate/s | sent | ok | errors | p50 | p90 | p99 | p99.9 | max |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["latency_ms"]
        cells = [f"{p[k]:.2f}" if p[k] is not None else "-" for k in ("p50", "p90", "p99", "p99.9", "max")]
        lines.append(
            f"| {r['name']} | {r['rate']:.0f} | {r['sent']} | {r['ok']} | {r['errors'] or 0} | "
            + " | ".join(cells)
            + " |"
        )
    md = "\n".join(lines) + "\n\nLatency in ms from the intended send time (open loop).\n\n"
    md += cpu_table(rows)
    md += f"Verdict: {verdict}\n\nServer-side latency after the status runs: {status_metrics.get('latency')}\n\n"
    md += f"Server-side latency after the create run: {create_metrics.get('latency')}\n"
    md += f"\nAssignment sources: {(create_metrics.get('api') or {}).get('assignment')}\n"
    name = f"api-platform-{args.create_rate:.0f}" if args.platform else "api"
    path = save(name, {"args": vars(args), "runs": rows, "verdict": verdict,
                        "server_after_status": status_metrics, "server_after_create": create_metrics}, md)  # fmt: skip
    print(md)
    print(f"report: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--status-rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--create-rate", type=float, default=100)
    parser.add_argument("--create-seconds", type=float, default=60)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--platform", action="store_true", help="run the optimizer and the relay beside the API")
    parser.add_argument("--capacity-scale", type=int, default=100,
                        help="multiply the demo fleet (605 couriers, sized for about an order a second): nothing "
                             "is delivered during the run, so at 100 orders/s it would be full within 6 s")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="5 s runs, for a smoke test")
    a = parser.parse_args()
    if a.quick:
        a.seconds, a.create_seconds, a.orders = 5, 5, 50
    print(f"command: {' '.join(sys.argv)}", flush=True)
    started = time.time()
    asyncio.run(main(a))
    print(f"took {time.time() - started:.0f} s")
