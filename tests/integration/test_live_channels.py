"""The channel cache both daemons share, against a real PostgreSQL (a database of its own) and Redis."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from uoom import channels, demo, migrate
from uoom.live_channels import LiveChannels
from uoom.stores.postgres import create_pool


@pytest.fixture
async def live(scratch_dsn, settings, private_redis_url):
    await migrate.up(scratch_dsn)
    pool = await create_pool(settings.model_copy(update={"database_url": SecretStr(scratch_dsn)}))
    redis = aioredis.from_url(private_redis_url)
    async with pool.acquire() as conn:
        await demo.load(conn)
    yield LiveChannels(pool, redis, registry_ttl_s=3600)  # only a NOTIFY can reload within the test
    await pool.close()
    await redis.aclose()


async def test_a_registry_change_is_seen_at_once_through_notify(live: LiveChannels) -> None:
    async with contextlib.AsyncExitStack() as stack:
        changed = asyncio.Event()
        await live.listen(stack, on_change=changed.set)
        before = {c.id for c in (await live.current()).channels}
        gone = sorted(before)[0]
        async with live.pool.acquire() as conn:
            await channels.update(conn, gone, {"enabled": False})
        await asyncio.wait_for(changed.wait(), 5)
        after = {c.id for c in (await live.current()).channels}
    assert after == before - {gone}


async def test_the_view_is_reused_until_something_is_re_read(live: LiveChannels) -> None:
    first = await live.current()
    assert await live.current() is first  # within the Redis TTL: no read, no copy
    assert await live.current(fresh=True) is not first
    assert first.redis_ok and first.channels
