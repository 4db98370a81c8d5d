"""Revocation takes effect within a stated bound even when PostgreSQL is slow or down for the
API's key lookups: `uoom keys revoke` announces the key through Redis (the API refuses it at once),
and a cached answer older than the stale bound is not served when its renewal fails."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest
from typer.testing import CliRunner

from commands.main import app
from daemons.api import auth as auth_module
from tests.integration.auth_support import AuthRig, answer, auth_rig, new_key
from uoom import apikeys
from uoom.config import Settings

runner = CliRunner()


async def _first_refusal(rig: AuthRig, key: str, timeout: float) -> tuple[int, float]:
    """(first status other than 200, seconds until it), or (200, timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        got = await answer(rig.auth, key)
        if got.status != 200:
            return got.status, time.monotonic() - started
        await asyncio.sleep(0.02)
    return 200, timeout


@pytest.mark.parametrize("lookups", ["slow", "down"])
async def test_uoom_keys_revoke_is_refused_at_once_while_postgres_is_slow_or_down_for_lookups(
    lookups: str, scratch_dsn: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UOOM_DATABASE_URL", scratch_dsn)
    async with auth_rig(scratch_dsn, settings.redis_url.get_secret_value()) as rig:
        await rig.auth.start()
        _, key = await new_key(rig.pool, "to-revoke")
        assert (await answer(rig.auth, key)).status == 200  # cached
        revoked = await asyncio.to_thread(runner.invoke, app, ["keys", "revoke", "to-revoke", "--yes"])
        assert revoked.exit_code == 0, revoked.stderr
        locker = await asyncpg.connect(scratch_dsn)
        try:
            if lookups == "slow":  # every lookup now waits past its timeout
                await locker.execute("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
            else:
                await rig.pool.close()
            status, seconds = await _first_refusal(rig, key, timeout=3)
        finally:
            await locker.close()
        assert status == 403, f"the revoked key was still accepted {seconds:.1f} s later"
        assert seconds <= auth_module.ANNOUNCED_REVOCATION_SECONDS, seconds
        print(f"revoked key refused {seconds * 1000:.0f} ms after `uoom keys revoke` (lookups {lookups})")


async def test_a_cached_answer_past_the_stale_bound_is_not_served_when_postgres_is_down(
    scratch_dsn: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The announcement was lost (revoked with Redis down, or directly in SQL): the bound still holds."""
    monkeypatch.setattr(auth_module, "STALE_SECONDS", 1.5, raising=False)
    async with auth_rig(scratch_dsn, settings.redis_url.get_secret_value()) as rig:
        _, key = await new_key(rig.pool, "to-revoke")
        assert (await answer(rig.auth, key)).status == 200
        async with rig.pool.acquire() as conn:
            await apikeys.revoke(conn, "to-revoke")  # no announcement
        await rig.pool.close()  # PostgreSQL down for the lookup path
        status, seconds = await _first_refusal(rig, key, timeout=5)
        assert status in (403, 503), f"still accepted {seconds:.1f} s later"
        assert seconds <= 1.5 + 0.1, seconds
        print(f"unannounced revocation: {status} after {seconds:.2f} s (stale bound 1.5 s)")


async def test_a_known_key_is_served_from_cache_through_a_short_postgres_outage(
    scratch_dsn: str, settings: Settings
) -> None:
    """The other side of the bound: within it, cached answers still stand."""
    async with auth_rig(scratch_dsn, settings.redis_url.get_secret_value()) as rig:
        key_id, key = await new_key(rig.pool, "kept")
        assert (await answer(rig.auth, key)).status == 200
        await rig.pool.close()
        await asyncio.sleep(auth_module.KEY_CACHE_SECONDS + 0.2)  # past the cache's renewal
        got = await answer(rig.auth, key)
        assert (got.status, got.key_id) == (200, key_id)


async def test_revoke_with_redis_down_still_revokes_and_says_the_api_learns_within_a_second(
    scratch_dsn: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UOOM_DATABASE_URL", scratch_dsn)
    monkeypatch.setenv("UOOM_REDIS_URL", "redis://127.0.0.1:1/0")
    async with auth_rig(scratch_dsn, settings.redis_url.get_secret_value()) as rig:
        _, key = await new_key(rig.pool, "to-revoke")
        revoked = await asyncio.to_thread(runner.invoke, app, ["keys", "revoke", "to-revoke", "--yes", "--json"])
        assert revoked.exit_code == 0, revoked.stderr
        assert json.loads(revoked.stdout) == {"revoked": "to-revoke"}
        assert "could not announce the revocation" in revoked.stderr
        assert "within a second" in revoked.stderr
        assert (await answer(rig.auth, key)).status == 403  # the database has it
