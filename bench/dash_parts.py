"""What each of the dashboard's reads costs, in CPU, on the side that answers it and on the
dashboard's: the parts of one refresh, measured one at a time on the whole platform (as
`bench/dash_bench.py` starts it), after status reads at `--rate` for 20 s so the API's metrics
document covers a busy minute. CPU time, not latency: it adds up on the machine's cores whatever
else runs, where a P99 on a shared machine does not.

    .venv/bin/python -m bench.dash_parts [--rate 300] [--times 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.api_bench import order_body
from bench.common import machine, save
from bench.cpu import stack_pids, tree_seconds
from bench.dash_bench import Platform
from bench.openloop import run
from uoom.daemon_metrics import MetricsReader, metrics_url


async def cost(times: int, work: Callable[[], Awaitable[Any]], servers: dict[str, int]) -> dict[str, float]:
    """CPU milliseconds per call of `work`: this process's, and each server's (a process tree)."""
    await work()  # connected, prepared, warm
    before, mine = tree_seconds(servers), time.process_time()
    for _ in range(times):
        await work()
    mine, after = time.process_time() - mine, tree_seconds(servers)
    return {"dashboard": mine / times * 1000, **{k: (after[k] - before[k]) / times * 1000 for k in servers}}


async def main(args: argparse.Namespace) -> None:
    import asyncpg

    from tui.probes import Probes
    from uoom import rankings
    from uoom.channels import list_channels
    from uoom.stores import outbox

    platform = await Platform().start()
    bench, daemons, base, headers = platform.settings, platform.daemons, platform.base, platform.headers
    stack = stack_pids(bench.home / "run")
    urls = {name: metrics_url(bench, name, at) for name, at in platform.bases.items()}
    parts: dict[str, dict[str, float]] = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await platform.healthy(session)
            ids = []
            for i in range(100):
                async with session.post(f"{base}/api/orders", json=order_body(i), headers=headers) as r:
                    ids.append((await r.json())["id"])

            def status(i: int) -> tuple[str, str, dict[str, Any]]:
                return "GET", f"{base}/api/orders/{ids[i % len(ids)]}/status", {"headers": headers}

            await run(session, "status", args.rate, 20, status)  # the API's last minute: a busy one
        async with MetricsReader(1.0) as reader:
            for name, url in urls.items():

                def read(name: str = name, url: str = url) -> Awaitable[Any]:
                    return reader.read(name, url)

                parts[f"{name} metrics document"] = await cost(args.times, read, {name: daemons[name].pid})
        conn = await asyncpg.connect(bench.database_url.get_secret_value())
        backend = {"postgres": await conn.fetchval("SELECT pg_backend_pid()")}
        parts["outbox status (PostgreSQL)"] = await cost(args.times, lambda: outbox.status(conn), backend)
        parts["channel registry (PostgreSQL)"] = await cost(args.times, lambda: list_channels(conn), backend)
        await conn.close()
        import redis.asyncio as aioredis

        client = aioredis.from_url(bench.redis_url.get_secret_value())
        redis_pid = {"redis": stack["redis"]}
        parts["ranking board (Redis)"] = await cost(args.times, lambda: rankings.board(client), redis_pid)
        await client.aclose()
        probes = Probes(bench, 1.0)
        await probes.open()
        parts["Kafka probe (metadata)"] = await cost(args.times, probes._kafka, {"kafka": stack["kafka"]})
        parts["DynamoDB probe (DescribeTable)"] = await cost(
            args.times, probes._dynamodb, {"dynamodb": stack["dynamodb"]}
        )
        await probes.close()
    finally:
        await platform.stop()
    report(args, parts)


def report(args: argparse.Namespace, parts: dict[str, dict[str, float]]) -> None:
    lines = ["| read | dashboard CPU ms | server | server CPU ms |", "|---|---|---|---|"]
    for name, found in parts.items():
        server, ms = next((k, v) for k, v in found.items() if k != "dashboard")
        lines.append(f"| {name} | {found['dashboard']:.2f} | {server} | {ms:.2f} |")
    md = (f"Machine: {machine()}\n\nCPU per call, averaged over {args.times} calls one after the other, after "
          f"{args.rate:.0f} status reads/s for 20 s (the API's metrics cover them). Dashboard: this process "
          f"(the client side of the read); server: the process tree that answered.\n\n"
          + "\n".join(lines) + "\n")  # fmt: skip
    path = save("dash-parts", {"args": vars(args), "parts": parts}, md)
    print(md)
    print(f"report: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300, help="status reads per second before the measures")
    parser.add_argument("--times", type=int, default=100, help="calls per part")
    print(f"command: {' '.join(sys.argv)}", flush=True)
    asyncio.run(main(parser.parse_args()))
