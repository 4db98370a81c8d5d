"""The read model's DynamoDB under load: restarted empty (reads fall back to PostgreSQL, the
projector recreates the table and re-applies the topic), and hanging instead of refusing (every
read on a request path, the customer listing too, answers within its deadline from PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.e2e.conftest import TcpProxy, order_body
from tests.faults.harness import QUICK_S, Daemons, FaultStack, SteadyLoad, check_books, misbehaviour, record
from uoom.config import Settings
from uoom.stores.aws import dynamodb_client

RATE = 5.0


async def off_loop(work: Any, *args: Any) -> Any:
    """The stack's start and stop wait on processes: not on the loop that drives the load, whose
    answers would look slow."""
    if asyncio.iscoroutinefunction(work):
        return await asyncio.to_thread(asyncio.run, work(*args))
    return await asyncio.to_thread(work, *args)


async def items_held(settings: Settings, order_ids: list[str]) -> int:
    """How many of the orders have an item in the read model (0 while it does not answer)."""
    held = 0
    try:
        async with dynamodb_client(settings, fail_fast=True) as ddb:
            for start in range(0, len(order_ids), 100):
                keys = [{"orderId": {"S": i}} for i in order_ids[start : start + 100]]
                response = await ddb.batch_get_item(RequestItems={settings.dynamodb_table: {"Keys": keys}})
                held += len(response["Responses"].get(settings.dynamodb_table, []))
    except Exception:  # noqa: BLE001 - down, or the table not back yet
        return 0
    return held


async def seconds_until(probe: Any, timeout: float, every: float = 0.25) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await probe():
            return time.monotonic() - started
        await asyncio.sleep(every)
    return None


async def test_dynamodb_restarted_empty_reads_fall_back_and_the_projector_rebuilds(
    fault_stack: FaultStack, daemons: Daemons
) -> None:
    platform = await daemons.platform(apis=1, relays=1, optimizers=0)
    since = datetime.now(UTC)
    load = SteadyLoad([d.url for d in platform["serve"]], fault_stack.api_key, rate=RATE)
    async with load.running():
        await asyncio.sleep(3)
        await off_loop(fault_stack.kill, "dynamodb")
        fault_started = time.monotonic()
        await asyncio.sleep(4)
        await off_loop(fault_stack.up, "dynamodb")  # in memory: back without the table or any item
        back = time.monotonic()
        before = list(load.accepted_ids)

        async def rebuilt() -> bool:
            return await items_held(fault_stack.settings, before) == len(before)

        converged = await seconds_until(rebuilt, 60, every=1.0)
        await asyncio.sleep(1)
    when = f"DynamoDB killed at +{fault_started % 1000:.1f}, back at +{back % 1000:.1f}"
    assert not misbehaviour(load.answers), [when, *misbehaviour(load.answers)[:10]]
    assert converged is not None, "the read model did not get back the orders accepted before the restart"
    books = await check_books(fault_stack, load, since)
    record("DynamoDB restarted empty", load=load, fault_s=back - fault_started, books_s=books.seconds,
           recovery={"readModelRebuilt": converged, "firstSuccess": load.first_success_after(fault_started)},
           notes="recovery: from DynamoDB answering again (no table) to every order accepted until then back in "
                 "the read model (the projector recreates the table and re-applies the topic)")  # fmt: skip


async def listing_probe(url: str, key: str, customer: str,
                        stop: asyncio.Event) -> list[tuple[float, int, float, str]]:  # fmt: skip
    """The customer listing, every 0.25 s until `stop`: (sent, status, seconds, sources)."""
    seen = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        while not stop.is_set():
            started = time.monotonic()
            response = await client.get(f"/api/customers/{customer}/orders")
            sources = ",".join(sorted({o["source"] for o in response.json().get("orders", [])}))
            seen.append((started, response.status_code, time.monotonic() - started, sources))
            await asyncio.sleep(0.25)
    return seen


async def test_dynamodb_hanging_reads_and_the_listing_answer_in_time_from_postgres(
    fault_stack: FaultStack, daemons: Daemons
) -> None:
    proxy = TcpProxy(("127.0.0.1", int(fault_stack.settings.dynamodb_endpoint.rsplit(":", 1)[1])))
    proxy.start()
    try:
        endpoint = f"http://{proxy.address}"
        # the status cache off: every status read goes to the read model
        api = daemons.make("serve", "serve-hang", DYNAMODB_ENDPOINT=endpoint, UOOM_STATUS_CACHE_TTL_MS="0",
                           UOOM_OPTIMIZER_URL="http://127.0.0.1:9")  # fmt: skip
        await api.astart()
        await daemons.start("relay")
        customer = str(uuid.uuid4())
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {fault_stack.api_key}"},
                                     timeout=10) as client:  # fmt: skip
            for _ in range(3):
                assert (await client.post("/api/orders", json=order_body(customer))).status_code == 201
        since = datetime.now(UTC)
        load = SteadyLoad([api.url], fault_stack.api_key, rate=RATE)
        stop = asyncio.Event()
        async with load.running():
            await asyncio.sleep(2)
            probe = asyncio.create_task(listing_probe(api.url, fault_stack.api_key, customer, stop))
            await asyncio.sleep(1)
            proxy.freeze()  # accepts, never answers
            frozen = time.monotonic()
            await asyncio.sleep(8)
            proxy.cut()
            proxy.start()
            restored = time.monotonic()
            await asyncio.sleep(3)
            stop.set()
            listings = await probe
    finally:
        proxy.cut()
    when = f"DynamoDB frozen at +{frozen % 1000:.1f}, restored at +{restored % 1000:.1f}"
    assert not misbehaviour(load.answers), [when, *misbehaviour(load.answers)[:10]]
    assert listings and all(status == 200 and took < QUICK_S for _, status, took, _ in listings), listings
    # Sent in the last half second before the restore, a listing can still reach DynamoDB: the
    # restore resets the frozen connection, botocore retries at once on a new one, and the answer
    # comes within the read model's deadline (more so from a server that keeps connections alive).
    during = [entry for entry in listings if frozen + 0.5 < entry[0] < restored - 0.5]
    assert during and {sources for *_, sources in during} == {"postgres"}, during
    back = [sent - restored for sent, *_, sources in listings if sent > restored and sources == "dynamodb"]
    assert back, f"the listing did not return to the read model: {listings[-5:]}"
    hung = [a for a in load.between(frozen, restored) if a.kind == "status"]
    assert hung and all(a.status == 200 for a in hung), load.by_status(hung)
    books = await check_books(fault_stack, load, since)
    record("DynamoDB hanging (black hole)", load=load, fault_s=restored - frozen, books_s=books.seconds,
           recovery={"slowestStatusRead": max(a.seconds for a in hung),
                     "slowestListing": max(took for _, _, took, _ in during), "listingFromReadModel": back[0]},
           notes="status reads and the customer listing answered from PostgreSQL within the read model's "
                 "deadline (UOOM_READ_MODEL_TIMEOUT_MS); DynamoDB accepted connections, never answered")  # fmt: skip
