"""The platform benchmark (issue 13): every daemon (API, optimizer, relay with its projector) and
every service of the local stack on this machine, the load generator included, open loop.

Per run, each phase on a fresh prepare() (database, Redis db, DynamoDB table, topics):
  a. creates at 100/s with the optimizer and the relay running: latency, errors by kind, the share
     assigned by the optimizer, commit -> Kafka ack, CPU per order per process; the books after.
  b. creates at 100/s, the API alone (the greedy fallback assigns): latency and errors.
  c. status vs the floor (GET /healthz) at 500/s, the API alone; then again with creates at 50/s
     beside each (two open loops at once): the ratio of the P99s per pair.
  d. the seed's peak, 167 orders/s, the whole platform: as a.

    .venv/bin/python -m bench.platform_bench [--quick] [--only a,d] [--profile api]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from bench import platform_report as pr
from bench.api_bench import free_port, outbox_drained, prepare, start_daemons, stop_daemons, wait_healthy
from bench.common import REPORTS, save
from uoom.books import audit
from uoom.config import Settings
from uoom.loadgen import Run, run
from uoom.loadgen.cpu import stack_pids, tree_seconds
from uoom.loadgen.machine import command_line, machine, versions
from uoom.loadgen.openloop import connector
from uoom.loadgen.scenarios import Target, create_orders, order_body

PHASES = ("a", "b", "c", "d")
WARM_UP_ORDERS = 20
STATUS_ORDERS = 200
PROFILE_RATE = 100  # py-spy samples per second
CREATE = "create POST /api/orders"
FLOOR = "floor GET /healthz"
STATUS = "status GET /api/orders/{id}/status"


class Platform:
    """One phase's daemons on a fresh prepare(): the API, and with `whole` the optimizer and the
    relay; the client session, and the process trees whose CPU is measured."""

    def __init__(self, args: argparse.Namespace, whole: bool) -> None:
        self.args, self.whole = args, whole
        self.created: list[str] = []  # every order a 201 answered, warm-up included

    async def __aenter__(self) -> Platform:
        self.bench, key = await prepare(Settings(), self.args.capacity_scale)
        if self.args.in_time is not None:
            os.environ.update(await in_time_env(self.dsn, self.args.in_time))  # the daemons inherit it
        port = free_port()
        self.target = Target(f"http://127.0.0.1:{port}", key)
        options = argparse.Namespace(workers=self.args.workers, platform=self.whole)
        self.daemons, health = start_daemons(port, options, self.bench)
        self.relay_url = next((url for url in health if url.endswith("/api/v1/metrics")), None)
        self.session = aiohttp.ClientSession(connector=connector(), timeout=aiohttp.ClientTimeout(total=10))
        try:
            for url in health:
                await wait_healthy(self.session, url)
            if self.whole:
                await outbox_drained(self.dsn)
            self.since = datetime.now(UTC) - timedelta(seconds=5)  # the broker's clock may lag ours a little
            self.created += await create_orders(self.session, self.target, WARM_UP_ORDERS)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        await stop_daemons(self.daemons, self.bench)

    @property
    def dsn(self) -> str:
        return self.bench.database_url.get_secret_value()

    def roots(self, extra: dict[str, int] | None = None) -> dict[str, int]:
        return {**{name: d.pid for name, d in self.daemons.items()}, **stack_pids(self.bench.home / "run"),
                "bench client": os.getpid(), **(extra or {})}  # fmt: skip

    async def get(self, url: str, text: bool = False) -> Any:
        async with self.session.get(url) as response:
            return await response.text() if text else await response.json()

    def creates(self, rate: float, seconds: float, name: str = CREATE) -> Coroutine[Any, Any, Run]:
        """An open loop of creates that keeps the id of every order created."""
        start = uuid.uuid4().int % 1_000_000
        url, headers = f"{self.target.url}/api/orders", self.target.headers

        def make(i: int) -> tuple[str, str, dict[str, Any]]:
            return "POST", url, {"json": order_body(start + i), "headers": headers}

        def note(_: int, status: int, body: bytes) -> None:
            if status == 201:
                self.created.append(str(orjson.loads(body)["id"]))

        return run(self.session, name, rate, seconds, make, ok=lambda s: s == 201, on_response=note)


async def measured_creates(p: Platform, rate: float, seconds: float, profile: str | None = None) -> dict[str, Any]:
    """Creates at `rate`: latency, errors, CPU per order per process tree, the assignment sources
    made during the run; with the whole platform also commit -> ack and the books."""
    api_metrics = f"{p.target.url}/api/metrics"
    before = await p.get(api_metrics)
    prom_before = await p.get(f"{p.relay_url}/prometheus", text=True) if p.relay_url else ""
    profiler = start_profiler(p, profile, seconds) if profile else None
    roots = p.roots({"profiler": profiler.pid} if profiler else None)
    cpu_before, started = tree_seconds(roots), time.monotonic()
    first = len(p.created)
    result = await p.creates(rate, seconds)
    if p.args.in_time is not None:  # the optimizer's rounds assigning the held orders count too
        await all_assigned(p.dsn, p.created[first:], p.args.in_time + 120)
    if p.whole:
        await outbox_drained(p.dsn)  # the relay's and Kafka's work for the run's last orders counts too
    cpu_after, wall = tree_seconds(roots), time.monotonic() - started
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after if name in cpu_before}
    result.cpu = {name: round(seconds_used / wall, 3) for name, seconds_used in cpu.items()}
    out: dict[str, Any] = {"create": result.as_json(), "wall_seconds": round(wall, 2),
                           "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()}}  # fmt: skip
    spent = {k: v for k, v in cpu.items() if k != "profiler"}
    out["cpu_ms_per_order"] = pr.cpu_ms_per_order(spent, result.ok)
    out["assignment"] = pr.assignment(before, await p.get(api_metrics))
    if p.args.in_time is not None:  # what assigned each order in the end, not what the API did at creation
        out["assignment"] = pr.final_assignment(await assignment_sources(p.dsn, p.created[first:]))
    if p.relay_url:
        relay = await p.get(p.relay_url)
        prom_after = await p.get(f"{p.relay_url}/prometheus", text=True)
        window = (relay.get("latency") or {}).get("commitToAck")
        out["commit_to_ack"] = pr.commit_to_ack(pr.buckets(prom_before), pr.buckets(prom_after), window)
    if profiler is not None and profile:
        out["profile"] = finish_profiler(p, profiler, profile, seconds)
    return out


def profile_path(args: argparse.Namespace, process: str, suffix: str) -> Path:
    return REPORTS / f"{report_name(args)}-profile-{process}{suffix}"


def start_profiler(p: Platform, process: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy on one daemon for the run's length (--subprocesses: the relay's projector too)."""
    if process not in p.daemons:
        raise SystemExit(f"--profile {process}: no such daemon in this phase (known: {', '.join(p.daemons)})")
    spy = Path(sys.executable).parent / "py-spy"
    REPORTS.mkdir(parents=True, exist_ok=True)
    command = [str(spy), "record", "--pid", str(p.daemons[process].pid), "--duration", str(max(1, round(seconds))),
               "--rate", str(PROFILE_RATE), "--format", "raw", "--function", "--nonblocking", "--subprocesses",
               "--output", str(profile_path(p.args, process, ".txt"))]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profiler(p: Platform, profiler: subprocess.Popen[bytes], process: str, seconds: float) -> dict[str, Any]:
    try:
        profiler.wait(timeout=max(30, seconds))
    except subprocess.TimeoutExpired:
        profiler.terminate()
        profiler.wait(10)
    raw = profile_path(p.args, process, ".txt")
    if not raw.exists():
        return {"process": process, "error": f"py-spy wrote nothing (exit {profiler.returncode})"}
    samples, rows = pr.profile_table(raw.read_text())
    md = pr.profile_markdown(process, samples, rows, max(1, round(seconds)), PROFILE_RATE)
    md += f"\n\nCollapsed stacks (a flame graph in speedscope.app or flamegraph.pl): `{raw.name}`\n"
    path = save(f"{report_name(p.args)}-profile-{process}", {"process": process, "samples": samples, "top": rows}, md)
    return {"process": process, "samples": samples, "report": path.name, "stacks": raw.name}


async def in_time_env(dsn: str, hold_s: float) -> dict[str, str]:
    """dispatch_policy in-time with every order due `hold_s` after its creation (the lead = the
    kitchen time less that), so the optimizer's rounds run within the measured minute; rounds every
    second: at 100 orders/s a round of 30 s would write 3,000 assignments at once, a burst no real
    city's round makes (the synthetic day's peak is 13 orders a minute), and whose events queue in
    the relay."""
    conn = await asyncpg.connect(dsn)
    try:
        prep_s = 60.0 * await conn.fetchval("SELECT min(prep_minutes) FROM restaurants")
    finally:
        await conn.close()
    return {"UOOM_DISPATCH_POLICY": "in-time", "UOOM_DISPATCH_LEAD_SECONDS": str(max(prep_s - hold_s, 0.0)),
            "UOOM_DISPATCH_RELEASE_INTERVAL": "1", "UOOM_REOPT_MAX_ORDERS": "2000"}  # fmt: skip


async def all_assigned(dsn: str, order_ids: list[str], timeout_s: float) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout_s
        query = "SELECT count(*) FROM orders WHERE id = ANY($1::uuid[]) AND channel_id IS NULL"
        while time.monotonic() < deadline:
            if not await conn.fetchval(query, order_ids):
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def assignment_sources(dsn: str, order_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT coalesce(assignment_source, 'none') AS source, count(*) FROM orders"
            " WHERE id = ANY($1::uuid[]) GROUP BY 1",
            order_ids,
        )
    finally:
        await conn.close()
    return {r["source"]: r["count"] for r in rows}


async def books(p: Platform) -> dict[str, Any]:
    """Every order a 201 answered: in PostgreSQL, in the read model, on Kafka."""
    found = await audit(p.bench, p.created, since=p.since, settle_s=p.args.settle)
    return {**found.as_json(), "lines": found.lines()}


async def phase_platform(args: argparse.Namespace, rate: float, profile: str | None = None) -> dict[str, Any]:
    async with Platform(args, whole=True) as p:
        out = await measured_creates(p, rate, args.seconds, profile)
        if args.books and not profile:
            out["books"] = await books(p)
            print("  " + out["books"]["lines"][0], file=sys.stderr, flush=True)
    return out


async def phase_api_alone(args: argparse.Namespace) -> dict[str, Any]:
    async with Platform(args, whole=False) as p:
        return await measured_creates(p, 100, args.seconds)


async def phase_status(args: argparse.Namespace) -> dict[str, Any]:
    """Floor and status at 500/s alternately, alone and then each with creates at 50/s beside it."""
    async with Platform(args, whole=False) as p:
        ids = await create_orders(p.session, p.target, STATUS_ORDERS)
        url, headers = p.target.url, p.target.headers

        async def warm() -> None:
            """Steady state: clients poll orders they created recently, so the cache holds them.
            Read right before each status loop: a floor loop as long as the cache's TTL would
            otherwise leave every entry expired, and the loop would open with a burst of misses
            (with the API alone, no projector writes the items: each a read-model miss, a
            PostgreSQL read and a write; a status P99 over a second)."""
            for oid in ids:
                async with p.session.get(f"{url}/api/orders/{oid}/status", headers=headers) as r:
                    await r.read()

        def floor(i: int) -> tuple[str, str, dict[str, Any]]:
            return "GET", f"{url}/healthz", {}

        def status(i: int) -> tuple[str, str, dict[str, Any]]:
            return "GET", f"{url}/api/orders/{ids[i % len(ids)]}/status", {"headers": headers}

        pairs = []
        for label, beside in (("alone", 0.0), ("creates at 50/s beside", 50.0)):
            pair: dict[str, Any] = {"label": label, "beside": []}
            for key, name, make in (("floor", FLOOR, floor), ("status", STATUS, status)):
                if key == "status":
                    await warm()
                loops = [run(p.session, name, args.status_rate, args.seconds, make)]
                if beside:
                    loops.append(p.creates(beside, args.seconds, f"{CREATE} beside {key}"))
                results = await asyncio.gather(*loops)
                pair[key] = results[0].as_json()
                pair["beside"] += [r.as_json() for r in results[1:]]
            f99, s99 = pair["floor"]["latency_ms"]["p99"], pair["status"]["latency_ms"]["p99"]
            pair |= {"floor_p99_ms": f99, "status_p99_ms": s99,
                     "ratio": round(s99 / f99, 3) if f99 and s99 is not None else None}  # fmt: skip
            pairs.append(pair)
    return {"pairs": pairs}


def report_name(args: argparse.Namespace) -> str:
    return str(args.report or ("platform-quick" if args.quick else "platform"))


async def main(args: argparse.Namespace) -> None:
    runs: list[dict[str, Any]] = []
    for n in range(1, args.runs + 1):
        results: dict[str, Any] = {}
        for phase in args.only:
            print(f"run {n}, phase {phase} ({datetime.now(UTC):%H:%M:%S})", file=sys.stderr, flush=True)
            if phase == "a":
                results["a"] = await phase_platform(args, 100)
            elif phase == "b":
                results["b"] = await phase_api_alone(args)
            elif phase == "c":
                results["c"] = await phase_status(args)
            else:
                results["d"] = await phase_platform(args, args.peak_rate)
        runs.append(results)
    profiled = None
    if args.profile:  # a run of its own: py-spy's sampling costs CPU the measured runs must not lose
        print(f"profile: phase a once more, py-spy on {args.profile}", file=sys.stderr, flush=True)
        profiled = await phase_platform(args, 100, args.profile)
    report(args, runs, await versions(Settings()), profiled)


def report(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    found_versions: dict[str, str],
    profiled: dict[str, Any] | None,
) -> None:
    md = [
        f"- versions: {', '.join(f'{k} {v}' for k, v in found_versions.items())}",
        f"- {len(runs)} run(s) of phases {', '.join(args.only)}, {args.seconds:g} s each; every phase on a fresh "
        f"database, Redis db, DynamoDB table and topics; every daemon and service and the load generator on this "
        f"machine, open loop (latency from each request's intended send time)",
        "", "## Against issue 13's targets", "", pr.summary_table(runs), "",
        "## Every open loop", "", pr.latency_table(runs), "", "Latency in ms.", "",
    ]  # fmt: skip
    for phase, title in (("a", "a: 100 orders/s, optimizer running"), ("d", f"d: {args.peak_rate:g} orders/s")):
        table = pr.cpu_table(runs, phase)
        if table:
            md += [f"## CPU per order, ms, per process tree ({title})", "", table, "",
                   "CPU seconds of each process tree (with its children: PostgreSQL's backends, the relay's "
                   "projector) from the first send until the relay published the run's last event, over the orders "
                   "created.", ""]  # fmt: skip
    md += details(runs)
    if profiled is not None:
        create, profile = profiled["create"], profiled["profile"]
        md += ["", "## Profile", "", f"{args.profile} under py-spy during one more run of phase a, not counted above "
               f"(create P99 {create['latency_ms']['p99']} ms, errors {create['errors'] or 0}, CPU per order "
               f"{profiled['cpu_ms_per_order']['total']} ms without py-spy's own): "
               f"{profile.get('report') or profile.get('error')}"]  # fmt: skip
    path = save(report_name(args), {"args": vars(args), "versions": found_versions, "runs": runs,
                                    "verdicts": pr.verdicts(runs), "profiled": profiled}, "\n".join(md))  # fmt: skip
    print("\n".join(md))
    print(f"report: {path}")


def details(runs: list[dict[str, Any]]) -> list[str]:
    """Assignment sources, commit -> ack, the books and the profile, per run."""
    md = ["## Per run", ""]
    for n, results in enumerate(runs, 1):
        for phase in ("a", "b", "d"):
            if phase not in results:
                continue
            r = results[phase]
            line = f"- run {n} {phase}: assignment sources {r['assignment']['sources']}"
            if "commit_to_ack" in r:
                c = r["commit_to_ack"]
                line += (
                    f"; commit -> ack over {c['events']} events: {c['share_within_50ms']} within 50 ms, "
                    f"P99 in the bucket <= {c['p99_bucket_ms']} ms, relay window P99 {c['window_p99_ms']} ms"
                )
            if "books" in r:
                line += f"; {r['books']['lines'][0]}" + "".join(f" / {x}" for x in r["books"]["lines"][1:])
            md.append(line)
    return md


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="seconds of load per open loop")
    parser.add_argument("--runs", type=int, default=None, help="runs of every phase (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="5 s loops, one run: a smoke test")
    parser.add_argument("--only", default=",".join(PHASES), help="the phases to run, e.g. a,d (default a,b,c,d)")
    parser.add_argument("--profile", metavar="PROCESS", choices=("api", "optimizer", "relay"),
                        help="py-spy this daemon during one more run of phase a: the top 25 functions")  # fmt: skip
    parser.add_argument("--peak-rate", type=float, default=167, help="phase d's rate (the seed's peak)")
    parser.add_argument("--status-rate", type=float, default=500, help="phase c's status and floor rate")
    parser.add_argument("--workers", type=int, default=1, help="API worker processes")
    parser.add_argument("--in-time", type=float, metavar="HOLD_S", default=None,
                        help="dispatch_policy in-time, every order due HOLD_S after creation (e.g. 20)")  # fmt: skip
    parser.add_argument("--capacity-scale", type=int, default=100,
                        help="multiply the demo fleet's capacity: nothing is delivered during a run")  # fmt: skip
    parser.add_argument("--no-books", dest="books", action="store_false", help="skip the books after a and d")
    parser.add_argument("--report", metavar="NAME", help="the report's name (default platform, or platform-quick)")
    parser.add_argument("--settle", type=float, default=30, help="seconds the books wait for the read model, Kafka")
    args = parser.parse_args(argv)
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    if not only or any(p not in PHASES for p in only):
        parser.error(f"--only takes phases among {','.join(PHASES)} (got {args.only!r})")
    args.only = [p for p in PHASES if p in only]
    if args.quick:
        args.seconds = 5 if args.seconds == 60 else args.seconds
    args.runs = (1 if args.quick else 3) if args.runs is None else args.runs
    if args.runs < 1 or args.seconds <= 0:
        parser.error("--runs must be at least 1 and --seconds above 0")
    return args


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    print(f"command: {command_line(sys.argv)}\nmachine: {machine()}", flush=True)
    started = time.time()
    asyncio.run(main(options))
    print(f"took {time.time() - started:.0f} s")
