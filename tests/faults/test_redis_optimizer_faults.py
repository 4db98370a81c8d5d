"""Redis restarted (nothing persisted) and the optimizer killed, under load: the API answers
throughout (no 500), the rankings come back by themselves, and the optimizer's circuit breaker
opens, lets the fallbacks assign, and closes once the optimizer is back."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
import httpx
import redis.asyncio as aioredis

from tests.faults.harness import Daemons, FaultStack, SteadyLoad, check_books, misbehaviour, record
from tests.faults.test_dynamodb_faults import off_loop, seconds_until
from uoom import rankings
from uoom.stores import redis_keys

RATE = 5.0


async def test_redis_restarted_rankings_and_limits_recover_by_themselves(
    fault_stack: FaultStack, daemons: Daemons
) -> None:
    platform = await daemons.platform(apis=1, relays=1, optimizers=1)
    since = datetime.now(UTC)
    load = SteadyLoad([d.url for d in platform["serve"]], fault_stack.api_key, rate=RATE)
    redis = aioredis.from_url(fault_stack.settings.redis_url.get_secret_value())

    async def ranked() -> bool:
        try:
            return bool(await redis.zcard(redis_keys.RANK_COMPOSITE))
        except Exception:  # noqa: BLE001 - still down
            return False

    async def weights_back() -> bool:
        try:
            return await rankings.get_weights(redis) == chosen
        except Exception:  # noqa: BLE001 - still down
            return False

    conn = await asyncpg.connect(fault_stack.dsn)
    try:  # the operator's weights, not the defaults: they must survive the restart
        # binary fractions that sum to exactly 1: normalised again, no bit changes
        operator_weights = {"cost": 0.5, "time": 0.125, "quality": 0.25, "capacity": 0.125}
        chosen = await rankings.apply_weights(conn, redis, operator_weights)
    finally:
        await conn.close()
    try:
        async with load.running():
            await asyncio.sleep(3)
            assert await ranked(), "no ranking in Redis before the fault"
            assert await weights_back(), "the operator's weights are not in Redis before the fault"
            await off_loop(fault_stack.kill, "redis")
            fault_started = time.monotonic()
            await asyncio.sleep(3)
            await off_loop(fault_stack.up, "redis")  # back empty: nothing is persisted
            back = time.monotonic()
            rankings_back = await seconds_until(ranked, 30)
            weights_restored = await seconds_until(weights_back, 30)
            await asyncio.sleep(3)
    finally:
        await redis.aclose()
    assert not misbehaviour(load.answers), misbehaviour(load.answers)[:10]
    assert rankings_back is not None, "the optimizer did not publish the rankings again"
    assert weights_restored is not None, "the operator's weights were not restored from PostgreSQL"
    after = [a for a in load.between(back + 2) if a.kind == "create"]
    assert after and all(a.status == 201 for a in after), load.by_status(after)
    limited = [a for a in load.answers if a.status == 429]
    assert not limited, f"{len(limited)} requests rate-limited at {RATE}/s (the limit is 500/s)"
    books = await check_books(fault_stack, load, since)
    record("Redis restarted", load=load, fault_s=back - fault_started, books_s=books.seconds,
           recovery={"rankingsBack": rankings_back, "weightsBack": weights_restored,
                     "firstSuccess": load.first_success_after(back)},
           notes="recovery: from Redis answering again (empty) to the composite ranking, and the operator's "
                 "weights (restored from PostgreSQL), back in it")  # fmt: skip


async def breaker(client: httpx.AsyncClient) -> str:
    state: str = (await client.get("/api/metrics")).json()["api"]["assignment"]["breaker"]
    return state


async def test_optimizer_killed_the_breaker_opens_fallbacks_assign_and_it_closes_when_it_returns(
    fault_stack: FaultStack, daemons: Daemons
) -> None:
    platform = await daemons.platform(apis=1, relays=1, optimizers=1)
    api, optimizer = platform["serve"][0], platform["optimizer"][0]
    since = datetime.now(UTC)
    load = SteadyLoad([api.url], fault_stack.api_key, rate=RATE)
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as metrics, load.running():
        await asyncio.sleep(3)
        assert await breaker(metrics) == "closed"
        await asyncio.to_thread(optimizer.kill)
        killed = time.monotonic()

        async def opened() -> bool:
            return await breaker(metrics) == "opened"

        opened_s = await seconds_until(opened, 20)
        await asyncio.sleep(2)
        await optimizer.astart()
        back = time.monotonic()

        async def closed() -> bool:
            return await breaker(metrics) == "closed"

        closed_s = await seconds_until(closed, 30)
        await asyncio.sleep(2)
        sources = (await metrics.get("/api/metrics")).json()["api"]["assignment"]["sources"]
    assert not misbehaviour(load.answers), misbehaviour(load.answers)[:10]
    assert opened_s is not None, "the breaker never opened with the optimizer dead"
    assert closed_s is not None, "the breaker did not close after the optimizer came back"
    during = [a for a in load.between(killed, back) if a.kind == "create"]
    assert during and all(a.status == 201 for a in during), load.by_status(during)
    assert sources.get("optimizer", 0) and sum(v for k, v in sources.items() if k != "optimizer"), sources
    books = await check_books(fault_stack, load, since)
    record("optimizer SIGKILLed", load=load, fault_s=back - killed, books_s=books.seconds,
           recovery={"breakerOpened": opened_s, "breakerClosed": closed_s},
           notes="breakerOpened: from the kill; breakerClosed: from the restarted optimizer answering "
                 "(UOOM_BREAKER_RECOVERY_SECONDS=5 and the next order's trial call)")  # fmt: skip
