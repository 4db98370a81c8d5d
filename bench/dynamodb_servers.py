"""CPU of the local DynamoDB servers (dynoxide, moto) per call the platform makes: conditional
PutItem as the read model writes (`put_if_newer`), GetItem, BatchGetItem of 100 keys.

Each server is started here on a free port (in memory, as the stack runs it), given the status
table, warmed up, then called by one sequential client; only the server process's CPU seconds
(user + system, /proc) are counted, per phase. Saved to bench/reports/dynamodb_servers.{json,md}.

    .venv/bin/python -m bench.dynamodb_servers [--servers dynoxide,moto] [--calls 1000] [--batches 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import save
from uoom.config import Settings
from uoom.loadgen.cpu import tree_seconds
from uoom.provision import ensure_status_table
from uoom.stack.dynamodb import DYNOXIDE_VERSION, dynoxide_path, moto_path, server_command
from uoom.stores.aws import dynamodb_client
from uoom.stores.readmodel import put_if_newer

BATCH = 100  # keys per BatchGetItem, DynamoDB's most


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running(server: str, log: Path) -> Iterator[tuple[Settings, int]]:
    """The server on a free port (its settings, its pid); killed afterwards."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(server_command(server, port), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield Settings(dynamodb_endpoint=f"http://127.0.0.1:{port}", dax_endpoint=""), proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def until_up(settings: Settings) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            async with dynamodb_client(settings, fail_fast=True) as client:
                await client.list_tables(Limit=1)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def snapshot(order_id: str, version: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"id": order_id, "customerId": str(uuid.uuid4()), "status": "PENDING", "version": version,
            "updatedAt": now, "createdAt": now, "items": [{"sku": "burger", "qty": 2}], "totalCents": 2590}  # fmt: skip


async def measure(server: str, calls: int, batches: int, log: Path) -> dict[str, Any]:
    with running(server, log) as (settings, pid):
        await until_up(settings)
        await ensure_status_table(settings)
        table = settings.dynamodb_table
        ids = [str(uuid.uuid4()) for _ in range(max(calls, BATCH))]
        async with dynamodb_client(settings) as client:

            async def puts(n: int, offset: int = 0) -> None:
                for i in range(n):
                    order = ids[(offset + i) % len(ids)]
                    await put_if_newer(client, settings, snapshot(order, 1 + (offset + i) // len(ids)))

            async def gets(n: int) -> None:
                for i in range(n):
                    await client.get_item(TableName=table, Key={"orderId": {"S": ids[i % len(ids)]}})

            async def batch_gets(n: int) -> None:
                for i in range(n):
                    keys = [{"orderId": {"S": ids[(i * BATCH + k) % len(ids)]}} for k in range(BATCH)]
                    answer = await client.batch_get_item(RequestItems={table: {"Keys": keys}})
                    assert len(answer["Responses"][table]) == BATCH and not answer.get("UnprocessedKeys")

            await puts(len(ids))  # warm-up: every item exists before it is read
            await gets(50)
            await batch_gets(3)
            phases: list[tuple[str, int, Callable[[], Awaitable[None]]]] = [
                ("PutItem (conditional, as put_if_newer)", calls, lambda: puts(calls, offset=len(ids))),
                ("GetItem", calls, lambda: gets(calls)),
                (f"BatchGetItem of {BATCH}", batches, lambda: batch_gets(batches)),
            ]
            results = []
            for name, count, run in phases:
                cpu0, wall0 = tree_seconds({server: pid})[server], time.perf_counter()
                await run()
                cpu, wall = tree_seconds({server: pid})[server] - cpu0, time.perf_counter() - wall0
                results.append({"call": name, "calls": count, "serverCpuS": round(cpu, 3),
                                "serverCpuMsPerCall": round(cpu * 1000 / count, 3),
                                "wallMsPerCall": round(wall * 1000 / count, 3)})  # fmt: skip
    version = DYNOXIDE_VERSION if server == "dynoxide" else _moto_version()
    return {"server": server, "version": version, "phases": results}


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="dynoxide,moto", help="comma-separated: dynoxide, moto")
    parser.add_argument("--calls", type=int, default=1000, help="PutItems and GetItems per server")
    parser.add_argument("--batches", type=int, default=100, help=f"BatchGetItems of {BATCH} keys per server")
    args = parser.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    installed = {"dynoxide": dynoxide_path(), "moto": moto_path()}
    missing = [s for s in servers if s not in installed or not installed[s].exists()]
    if missing:
        parser.error(f"not installed or unknown: {', '.join(missing)} (dynoxide: scripts/setup builds it)")
    logs = Path(tempfile.mkdtemp(prefix="uoom-ddb-bench-"))
    runs = [asyncio.run(measure(s, args.calls, args.batches, logs / f"{s}.log")) for s in servers]
    lines = ["| server | call | calls | server CPU (s) | server CPU per call (ms) | wall per call (ms) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for run in runs:
        for p in run["phases"]:
            lines.append(f"| {run['server']} {run['version']} | {p['call']} | {p['calls']} | {p['serverCpuS']} "
                         f"| {p['serverCpuMsPerCall']} | {p['wallMsPerCall']} |")  # fmt: skip
    path = save("dynamodb_servers", {"runs": runs}, "\n".join(lines))
    print("\n".join(lines))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
