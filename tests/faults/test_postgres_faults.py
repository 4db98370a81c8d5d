"""PostgreSQL restarted, and PostgreSQL stalled at COMMIT, under load: quick 503s while it is down,
recovery without restarting any daemon, and a create whose COMMIT stalled never turns into two
orders when the client retries with its Idempotency-Key (the load retries every 503 and no-answer
with the same key, and `check_books` fails on one key with two orders)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tests.e2e.test_commit_stall import CommitStall
from tests.faults.harness import REQUEST_DEADLINE_S, Daemons, FaultStack, SteadyLoad, check_books, misbehaviour, record
from tests.faults.test_dynamodb_faults import off_loop

RATE = 5.0


async def server_side(url: str) -> dict[str, object]:
    """The API's own view of the last 60 s (max of order creation and of its event loop's lag):
    tells a slow API from a slow client on a busy machine."""
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        latency = (await client.get(f"{url}/api/metrics")).json().get("latency", {})
    return {name: (v or {}).get("max") for name, v in latency.items() if name in ("POST /api/orders", "eventLoopLag")}


async def test_postgres_restarted_quick_503s_then_recovery_without_restarting_a_daemon(
    fault_stack: FaultStack, daemons: Daemons
) -> None:
    platform = await daemons.platform(apis=1, relays=1, optimizers=1)
    since = datetime.now(UTC)
    load = SteadyLoad([d.url for d in platform["serve"]], fault_stack.api_key, rate=RATE)
    async with load.running():
        await asyncio.sleep(3)
        await off_loop(fault_stack.stop, "postgres")  # "fast" shutdown: every session aborted, as a restart does
        stopped = time.monotonic()
        await asyncio.sleep(3)
        await off_loop(fault_stack.up, "postgres")
        back = time.monotonic()
        await asyncio.sleep(8)
        server = await server_side(platform["serve"][0].url)
    when = f"PostgreSQL stopped at +{stopped % 1000:.1f}, back at +{back % 1000:.1f}"
    assert not misbehaviour(load.answers), [when, server, *misbehaviour(load.answers)[:10]]
    down = load.between(stopped + 0.5, back)
    assert 503 in {a.status for a in down}, load.by_status(down)
    assert all(d.alive and d.starts == 1 for kind in platform.values() for d in kind)
    books = await check_books(fault_stack, load, since)
    record("PostgreSQL restarted", load=load, fault_s=back - stopped, books_s=books.seconds,
           recovery={"firstCreate": load.first_success_after(back),
                     "firstStatus": load.first_success_after(back, "status")},
           notes="recovery: from PostgreSQL accepting connections again to the first 201 / status 200 of a request "
                 "sent after it; no daemon restarted")  # fmt: skip


async def test_postgres_stalled_at_commit_retries_with_the_same_key_make_one_order(
    fault_stack: FaultStack, daemons: Daemons
) -> None:
    dsn = fault_stack.dsn
    port = int(dsn.rsplit(":", 1)[1].split("/", 1)[0])
    stall = CommitStall(("127.0.0.1", port))
    stall.start()
    try:
        via = dsn.replace(f":{port}/", f":{stall.port}/")
        api = daemons.make("serve", "serve-stall", UOOM_DATABASE_URL=via, UOOM_OPTIMIZER_URL="http://127.0.0.1:9")
        await api.astart()
        await daemons.start("relay")
        since = datetime.now(UTC)
        load = SteadyLoad([api.url], fault_stack.api_key, rate=RATE)
        stalls = 0
        async with load.running():
            await asyncio.sleep(2)
            started = time.monotonic()
            for where in ("answer", "before") * 3:  # committed but unanswered; not yet committed
                stall.arm(where)
                for _ in range(40):
                    if stall.held.is_set():
                        break
                    await asyncio.sleep(0.05)
                stalls += stall.held.is_set()
                await asyncio.sleep(REQUEST_DEADLINE_S + 1.0)  # past the request deadline: the client got its 503
                stall.release()
                await asyncio.sleep(1)
            fault_s = time.monotonic() - started
            await asyncio.sleep(3)
    finally:
        stall.release()
        stall.cut()
    assert stalls == 6
    assert not misbehaviour(load.answers), misbehaviour(load.answers)[:10]
    # a held COMMIT is a create's or a status change's, whichever came first after arming
    assert 503 in {a.status for a in load.answers if a.kind in ("create", "change")}, load.by_status()
    books = await check_books(fault_stack, load, since)  # fails on one key with two orders
    record("PostgreSQL stalled at COMMIT", load=load, fault_s=fault_s, books_s=books.seconds,
           recovery={"firstSuccess": load.first_success_after(started)},
           notes=f"6 COMMITs held {REQUEST_DEADLINE_S + 1:.0f} s (3 committed, answer held; 3 before "
                 "PostgreSQL); every create retried with its Idempotency-Key after a 503: one order a key")  # fmt: skip
