"""What the dashboard costs: its own CPU at its refresh rate, and whether its polling shows in the
API's P99. The whole platform (API, optimizer, relay) runs as `uoom up` runs it; status reads go
to the API open-loop at a fixed rate, in rounds of runs, one per mode, the order turned each round:

- `off`: nothing watches;
- `metrics`: a plain GET of the three daemons' metrics documents every refresh;
- `sources`: the dashboard's reads alone (`DashboardSources.fetch`, no Textual), every refresh;
- `noprobes`: the same without the Kafka / DynamoDB probes;
- `dash`: a real `uoom dash` (the Textual app in a pseudo-terminal);
- `MODE@base`: MODE with the code of the `--baseline` checkout (`git worktree add /tmp/base HEAD~1`),
  so a change and what it changes are measured side by side, in the same minutes.

    .venv/bin/python -m bench.dash_bench [--rate 300] [--seconds 30] [--rounds 2] [--refresh 1]
        [--modes off,dash] [--baseline TREE] [--name dash]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import subprocess
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Dashboard:
    """`uoom dash` in a pseudo-terminal of `columns` x `rows`, its output read and thrown away (a
    terminal that nobody reads would block the app's writes)."""

    def __init__(self, env: dict[str, str], refresh: float, tree: str, columns: int = 160, rows: int = 48) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the dashboard, with the code of `tree`
            os.environ.update({**env, "PYTHONPATH": tree})
            os.chdir(tree)
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


class Poller:
    """The dashboard's reads without its screen (`--poll WHAT`), in a child process of its own, with
    the code of `tree` (this file run by its path, so its imports come from `tree`)."""

    def __init__(self, env: dict[str, str], refresh: float, what: str, tree: str) -> None:
        argv = [sys.executable, os.path.abspath(__file__), "--poll", what, "--refresh", str(refresh)]
        self.process = subprocess.Popen(argv, env={**os.environ, **env, "PYTHONPATH": tree}, cwd=tree,
                                        stdout=subprocess.DEVNULL)  # fmt: skip
        self.pid, self.bytes_drawn = self.process.pid, 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def poll(what: str, refresh: float) -> None:
    """The child of `Poller` / `MetricsPoller`: read as the dashboard does, until terminated."""
    settings = Settings()
    if what == "metrics":
        from uoom.daemon_metrics import metrics_url

        urls = [metrics_url(settings, name) for name in ("api", "optimizer", "relay")]
        async with aiohttp.ClientSession() as session:
            while True:
                for url in urls:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(url) as response:
                            await response.read()
                await asyncio.sleep(refresh)
    from tui.probes import PROBE_EVERY_SECONDS
    from tui.sources import DashboardSources

    every = 1e9 if what == "noprobes" else PROBE_EVERY_SECONDS  # noprobes: once, at the start
    async with DashboardSources(settings, refresh=refresh, probe_every=every) as sources:
        while True:
            await sources.fetch()
            await asyncio.sleep(refresh)  # as the app: the next poll is armed when a fetch ends


def watcher(mode: str, env: dict[str, str], refresh: float, baseline: str | None) -> Dashboard | Poller | None:
    """`dash`, `sources`, ...: this tree's; `dash@base`, `sources@base`, ...: the `--baseline` tree's."""
    what, _, base = mode.partition("@")
    if base and not baseline:
        raise SystemExit(f"{mode}: give --baseline TREE (a checkout of the code to compare with)")
    tree = baseline if base and baseline else ROOT
    if what == "dash":
        return Dashboard(env, refresh, tree)
    if what in ("sources", "noprobes", "metrics"):
        return Poller(env, refresh, what, tree)
    return None


def daemon_env(bench: Settings, api_port: int, optimizer_port: int, relay_port: int) -> dict[str, str]:
    return {"UOOM_API_RATE_LIMIT_PER_SECOND": "1000000", "UOOM_API_PORT": str(api_port),
            "UOOM_API_URL": f"http://127.0.0.1:{api_port}",
            "UOOM_OPTIMIZER_PORT": str(optimizer_port), "UOOM_OPTIMIZER_URL": f"http://127.0.0.1:{optimizer_port}",
            "UOOM_RELAY_METRICS_PORT": str(relay_port), "UOOM_RELAY_URL": f"http://127.0.0.1:{relay_port}",
            "UOOM_DYNAMODB_TABLE": bench.dynamodb_table, "UOOM_DATABASE_URL": bench.database_url.get_secret_value(),
            "UOOM_REDIS_URL": bench.redis_url.get_secret_value(), "UOOM_KAFKA_TOPIC": bench.kafka_topic,
            "UOOM_KAFKA_DLQ_TOPIC": bench.kafka_dlq_topic,
            "UOOM_RELAY_PROJECTOR_GROUP": f"{bench.kafka_topic}.projector"}  # fmt: skip


class Platform:
    """API, optimizer and relay on free ports, over a fresh bench database, Redis db and topic."""

    async def start(self) -> Platform:
        self.settings, key = await prepare(Settings(), 100)
        ports = {"api": free_port(), "optimizer": free_port(), "relay": free_port()}
        self.env = daemon_env(self.settings, ports["api"], ports["optimizer"], ports["relay"])
        self.daemons = {"api": start(["serve", "--port", str(ports["api"])], self.env),
                        "optimizer": start(["optimizer"], self.env), "relay": start(["relay"], self.env)}  # fmt: skip
        self.bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        self.base, self.headers = self.bases["api"], {"Authorization": f"Bearer {key}"}
        return self

    async def healthy(self, session: aiohttp.ClientSession) -> None:
        for url in (
            f"{self.base}/healthz",
            f"{self.bases['optimizer']}/healthz",
            f"{self.bases['relay']}/api/v1/metrics",
        ):
            await wait_healthy(session, url)

    async def stop(self) -> None:
        await stop_daemons(self.daemons, self.settings)


async def main(args: argparse.Namespace) -> None:
    platform = await Platform().start()
    bench, env, daemons, base, headers = (
        platform.settings,
        platform.env,
        platform.daemons,
        platform.base,
        platform.headers,
    )
    runs: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await platform.healthy(session)
            ids = []
            for i in range(args.orders):  # orders to read, and a live ranking and outbox for the dashboard
                async with session.post(f"{base}/api/orders", json=order_body(i), headers=headers) as r:
                    ids.append((await r.json())["id"])
            for oid in ids:  # steady state: recently created orders are in the status cache
                async with session.get(f"{base}/api/orders/{oid}/status", headers=headers) as r:
                    await r.read()
            roots = {**{name: d.pid for name, d in daemons.items()}, **stack_pids(bench.home / "run")}
            modes = args.modes.split(",")
            for round_ in range(args.rounds):
                for mode in modes if round_ % 2 == 0 else modes[::-1]:
                    runs.append(await one_run(session, args, base, headers, ids, env, roots, mode))
    finally:
        await platform.stop()
    report(args, runs)


async def one_run(session: aiohttp.ClientSession, args: argparse.Namespace, base: str, headers: dict[str, str],
                  ids: list[str], env: dict[str, str], roots: dict[str, int],
                  mode: str) -> dict[str, Any]:  # fmt: skip
    dash = watcher(mode, env, args.refresh, args.baseline)
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
    row = {"mode": mode, "dashboard": dash is not None, "rate": args.rate, "seconds": args.seconds, "sent": result.sent,
           "ok": len(result.latencies_ms), "errors": result.errors, "latency_ms": percentiles(result.latencies_ms),
           "cpu_cores": cpu, "terminal_bytes": drawn}  # fmt: skip
    print(f"  {mode:>8} p99={row['latency_ms']['p99']:.2f} ms "
          f"dash cpu={cpu.get('dashboard', 0):.3f} cores", flush=True)  # fmt: skip
    return row


def report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    lines = ["| watching | rate/s | ok | errors | p50 | p90 | p99 | p99.9 | max | watcher CPU (cores) | API CPU | "
             "PostgreSQL CPU | Redis CPU |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in runs:
        p = r["latency_ms"]
        cells = [f"{p[k]:.2f}" if p[k] is not None else "-" for k in ("p50", "p90", "p99", "p99.9", "max")]
        cpu = r["cpu_cores"]
        head = f"| {r['mode']} | {r['rate']:.0f} | {r['ok']} | {sum(r['errors'].values())} | "
        tail = f" | {cpu.get('dashboard', 0):.3f} | {cpu['api']:.3f} | {cpu.get('postgres', 0):.3f} | "
        lines.append(head + " | ".join(cells) + tail + f"{cpu.get('redis', 0):.3f} |")
    summary: dict[str, Any] = {}
    for mode in args.modes.split(","):
        mine = [r for r in runs if r["mode"] == mode]
        p99, p999 = [r["latency_ms"]["p99"] for r in mine], [r["latency_ms"]["p99.9"] for r in mine]
        cores = [r["cpu_cores"].get("dashboard", 0) for r in mine]
        summary[mode] = {"p99_ms": p99, "p99.9_ms": p999, "watcher_cores": cores}
    md = (f"Machine: {machine()}\n\nStatus reads open-loop at {args.rate:.0f}/s for {args.seconds:.0f} s per run, "
          f"whole platform up (API, optimizer, relay with projector); watchers at a {args.refresh:g} s refresh "
          f"(`dash`: `uoom dash` in a 160x48 pseudo-terminal; modes: see the module's docstring)\n\n"
          + "\n".join(lines)
          + f"\n\nLatency in ms from the intended send time.\n\nSummary: {summary}\n")  # fmt: skip
    path = save(args.name, {"args": vars(args), "runs": runs, "summary": summary}, md)
    print(md)
    print(f"report: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300, help="status reads per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="a run per mode each round, the order turned")
    parser.add_argument("--modes", default="off,dash", help="off, metrics, sources, noprobes, dash (comma-separated)")
    parser.add_argument("--baseline", help="a checkout to compare with: the modes `dash@base`, `sources@base`, ...")
    parser.add_argument("--name", default="dash", help="the report's name in bench/reports")
    parser.add_argument("--poll", choices=("metrics", "sources", "noprobes"), help=argparse.SUPPRESS)
    parser.add_argument("--refresh", type=float, default=1.0, help="the dashboard's --refresh")
    parser.add_argument("--orders", type=int, default=200)
    a = parser.parse_args()
    if a.poll:  # the child of a Poller
        asyncio.run(poll(a.poll, a.refresh))
        sys.exit(0)
    print(f"command: {' '.join(sys.argv)}", flush=True)
    started = time.time()
    asyncio.run(main(a))
    print(f"took {time.time() - started:.0f} s")
