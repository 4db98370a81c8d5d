"""What the dashboard costs: its own CPU at its refresh rate, and whether its polling shows in the
API's P99. The whole platform (API, optimizer, relay) runs as `uoom up` runs it; status reads go
to the API open-loop at a fixed rate, in pairs of runs, one without and one with a real `uoom dash`
(the Textual app in a pseudo-terminal, polling every daemon, PostgreSQL and Redis), alternating.

    .venv/bin/python -m bench.dash_bench [--rate 300] [--seconds 30] [--pairs 3] [--refresh 1]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import signal
import struct
import sys
import termios
import threading
import time
from typing import Any

import aiohttp

from bench.api_bench import free_port, order_body, prepare, start, stop_daemons, wait_healthy
from bench.common import machine, percentiles, save
from bench.cpu import CpuMeter, stack_pids
from bench.openloop import Run, run
from uoom.config import Settings


class Dashboard:
    """`uoom dash` in a pseudo-terminal of `columns` x `rows`, its output read and thrown away (a
    terminal that nobody reads would block the app's writes)."""

    def __init__(self, env: dict[str, str], refresh: float, columns: int = 160, rows: int = 48) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the dashboard
            os.environ.update(env)
            os.execv(sys.executable, [sys.executable, "-m", "commands", "dash", "--refresh", str(refresh)])
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.pid, self.fd, self.bytes_drawn = pid, fd, 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.bytes_drawn += len(chunk)

    def stop(self) -> None:
        os.write(self.fd, b"q")  # the app's own quit key
        for _ in range(50):
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                return
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGTERM)
        os.waitpid(self.pid, 0)


def daemon_env(bench: Settings, api_port: int, optimizer_port: int, relay_port: int) -> dict[str, str]:
    return {"UOOM_API_RATE_LIMIT_PER_SECOND": "1000000", "UOOM_API_PORT": str(api_port),
            "UOOM_API_URL": f"http://127.0.0.1:{api_port}",
            "UOOM_OPTIMIZER_PORT": str(optimizer_port), "UOOM_OPTIMIZER_URL": f"http://127.0.0.1:{optimizer_port}",
            "UOOM_RELAY_METRICS_PORT": str(relay_port), "UOOM_RELAY_URL": f"http://127.0.0.1:{relay_port}",
            "UOOM_DYNAMODB_TABLE": bench.dynamodb_table, "UOOM_DATABASE_URL": bench.database_url.get_secret_value(),
            "UOOM_REDIS_URL": bench.redis_url.get_secret_value(), "UOOM_KAFKA_TOPIC": bench.kafka_topic,
            "UOOM_KAFKA_DLQ_TOPIC": bench.kafka_dlq_topic,
            "UOOM_RELAY_PROJECTOR_GROUP": f"{bench.kafka_topic}.projector"}  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    bench, key = await prepare(Settings(), 100)
    api_port, optimizer_port, relay_port = free_port(), free_port(), free_port()
    env = daemon_env(bench, api_port, optimizer_port, relay_port)
    daemons = {"api": start(["serve", "--port", str(api_port)], env), "optimizer": start(["optimizer"], env),
               "relay": start(["relay"], env)}  # fmt: skip
    base, headers = f"http://127.0.0.1:{api_port}", {"Authorization": f"Bearer {key}"}
    runs: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for url in (f"{base}/healthz", f"http://127.0.0.1:{optimizer_port}/healthz",
                        f"http://127.0.0.1:{relay_port}/api/v1/metrics"):  # fmt: skip
                await wait_healthy(session, url)
            ids = []
            for i in range(args.orders):  # orders to read, and a live ranking and outbox for the dashboard
                async with session.post(f"{base}/api/orders", json=order_body(i), headers=headers) as r:
                    ids.append((await r.json())["id"])
            for oid in ids:  # steady state: recently created orders are in the status cache
                async with session.get(f"{base}/api/orders/{oid}/status", headers=headers) as r:
                    await r.read()
            roots = {**{name: d.pid for name, d in daemons.items()}, **stack_pids(bench.home / "run")}
            for pair in range(args.pairs):
                for with_dash in (False, True) if pair % 2 == 0 else (True, False):
                    runs.append(await one_run(session, args, base, headers, ids, env, roots, with_dash))
    finally:
        await stop_daemons(daemons, bench)
    report(args, runs)


async def one_run(session: aiohttp.ClientSession, args: argparse.Namespace, base: str, headers: dict[str, str],
                  ids: list[str], env: dict[str, str], roots: dict[str, int],
                  with_dash: bool) -> dict[str, Any]:  # fmt: skip
    dash = Dashboard(env, args.refresh) if with_dash else None
    if dash:
        await asyncio.sleep(5)  # start-up (imports, first fetch) is not what an operator pays each second
    meter = CpuMeter({**roots, **({"dashboard": dash.pid} if dash else {})})
    meter.start()

    def status(i: int) -> tuple[str, str, dict[str, Any]]:
        return "GET", f"{base}/api/orders/{ids[i % len(ids)]}/status", {"headers": headers}

    result: Run = await run(session, "status", args.rate, args.seconds, status)
    cpu = meter.stop()
    drawn = dash.bytes_drawn if dash else 0
    if dash:
        dash.stop()
    row = {"dashboard": with_dash, "rate": args.rate, "seconds": args.seconds, "sent": result.sent,
           "ok": len(result.latencies_ms), "errors": result.errors, "latency_ms": percentiles(result.latencies_ms),
           "cpu_cores": cpu, "terminal_bytes": drawn}  # fmt: skip
    print(f"  dashboard={'on ' if with_dash else 'off'} p99={row['latency_ms']['p99']:.2f} ms "
          f"dash cpu={cpu.get('dashboard', 0):.3f} cores", flush=True)  # fmt: skip
    return row


def report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    lines = ["| dashboard | rate/s | ok | errors | p50 | p90 | p99 | p99.9 | max | dashboard CPU (cores) | API CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in runs:
        p = r["latency_ms"]
        cells = [f"{p[k]:.2f}" if p[k] is not None else "-" for k in ("p50", "p90", "p99", "p99.9", "max")]
        cpu = r["cpu_cores"]
        head = f"| {'on' if r['dashboard'] else 'off'} | {r['rate']:.0f} | {r['ok']} | {sum(r['errors'].values())} | "
        lines.append(head + " | ".join(cells) + f" | {cpu.get('dashboard', 0):.3f} | {cpu['api']:.3f} |")
    on = [r["latency_ms"]["p99"] for r in runs if r["dashboard"]]
    off = [r["latency_ms"]["p99"] for r in runs if not r["dashboard"]]
    dash_cpu = [r["cpu_cores"]["dashboard"] for r in runs if r["dashboard"]]
    summary = {"p99_off_ms": off, "p99_on_ms": on, "median_p99_off": sorted(off)[len(off) // 2],
               "median_p99_on": sorted(on)[len(on) // 2], "dashboard_cores": dash_cpu}  # fmt: skip
    md = (f"Machine: {machine()}\n\nStatus reads open-loop at {args.rate:.0f}/s for {args.seconds:.0f} s per run, "
          f"whole platform up (API, optimizer, relay with projector); `uoom dash --refresh {args.refresh:g}` "
          f"in a {160}x{48} pseudo-terminal during the 'on' runs.\n\n" + "\n".join(lines)
          + f"\n\nLatency in ms from the intended send time.\n\nSummary: {summary}\n")  # fmt: skip
    path = save("dash", {"args": vars(args), "runs": runs, "summary": summary}, md)
    print(md)
    print(f"report: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300, help="status reads per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--pairs", type=int, default=3, help="runs without and with the dashboard, alternating")
    parser.add_argument("--refresh", type=float, default=1.0, help="the dashboard's --refresh")
    parser.add_argument("--orders", type=int, default=200)
    a = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}", flush=True)
    started = time.time()
    asyncio.run(main(a))
    print(f"took {time.time() - started:.0f} s")
