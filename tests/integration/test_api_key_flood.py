"""A flood of unknown API keys: known keys keep being answered from the cache, unknown-key lookups
are bounded (the pool stays available for real work), and one address's failures are limited."""

from __future__ import annotations

import asyncio
import time

from daemons.api import auth as auth_module
from tests.integration.auth_support import Answer, AuthRig, answer, auth_rig, new_key
from uoom import apikeys
from uoom.config import Settings

POOL_SIZE = 8  # room for the known keys' renewals beside the bounded lookups
# A wave's requests all run on this test's one event loop: each wave holds it for a while, and
# every time measured here includes that hold (more of it on a busy CI machine). Small waves keep
# it short; the bounds below leave room for it and still catch a wait for PostgreSQL.
WAVE = 500


def _pool_free(rig: AuthRig) -> int:
    """Connections the pool could hand out now (idle, or not opened yet)."""
    return rig.pool.get_max_size() - (rig.pool.get_size() - rig.pool.get_idle_size())


async def test_known_keys_and_real_work_go_on_during_a_flood_of_distinct_unknown_keys(
    scratch_dsn: str, settings: Settings
) -> None:
    async with auth_rig(scratch_dsn, settings.redis_url.get_secret_value(), POOL_SIZE) as rig:
        known_ids, known_keys = zip(*[await new_key(rig.pool, f"known-{i}") for i in range(3)], strict=True)
        for key in known_keys:  # cached, as for any client that was already sending
            assert (await answer(rig.auth, key)).status == 200
        # More distinct keys than any cache holds, from many addresses (a botnet, not one client).
        flood = [(apikeys.new_key(), f"10.{i % 250}.{i // 250 % 250}.1") for i in range(12_000)]
        lowest_free, known_answers, real_work = POOL_SIZE, [], []
        done = asyncio.Event()

        async def flooding() -> list[Answer]:
            answers = []
            for start in range(0, len(flood), WAVE):  # waves, so the flood lasts a while
                answers += await asyncio.gather(*(answer(rig.auth, k, a) for k, a in flood[start : start + WAVE]))
            done.set()
            return answers

        async def watching() -> None:
            nonlocal lowest_free
            while not done.is_set():
                lowest_free = min(lowest_free, _pool_free(rig))
                for key_id, key in zip(known_ids, known_keys, strict=True):
                    got = await answer(rig.auth, key)
                    known_answers.append((got.status, got.key_id == key_id, got.seconds))
                started = time.monotonic()
                try:
                    async with rig.pool.acquire(timeout=1) as conn:  # the API's real work
                        await conn.fetchval("SELECT 1")
                    real_work.append(time.monotonic() - started)
                except TimeoutError:
                    real_work.append(float("inf"))
                await asyncio.sleep(0.01)

        started = time.monotonic()
        answers, _ = await asyncio.gather(flooding(), watching())
        seconds = time.monotonic() - started
        statuses = {a.status for a in answers}
        assert statuses <= {401, 429, 503}, statuses
        slowest = max(a.seconds for a in answers)
        assert slowest <= auth_module.LOOKUP_TIMEOUT_SECONDS + 1.5, slowest  # refused quickly
        assert known_answers and all(s == 200 and same for s, same, _ in known_answers), known_answers[:5]
        assert max(s for _, _, s in known_answers) < 0.5, "a known key waited behind the flood"
        assert max(real_work) < 0.9, f"real work waited {max(real_work):.3f} s for a connection"
        assert lowest_free >= POOL_SIZE - auth_module.LOOKUP_CONCURRENCY - len(known_keys), lowest_free
        counts = {s: sum(a.status == s for a in answers) for s in sorted(statuses)}
        print(f"flood of {len(flood)} unknown keys in {seconds:.2f} s: {counts}, slowest {slowest:.3f} s,"
              f" known key max {max(s for _, _, s in known_answers) * 1000:.1f} ms,"
              f" real work max {max(real_work) * 1000:.1f} ms, pool free >= {lowest_free}")  # fmt: skip


async def test_one_address_is_refused_after_its_failed_authentications_without_a_lookup(
    scratch_dsn: str, settings: Settings
) -> None:
    async with auth_rig(scratch_dsn, settings.redis_url.get_secret_value(), POOL_SIZE) as rig:
        known_id, known = await new_key(rig.pool, "known")
        assert (await answer(rig.auth, known, "192.0.2.7")).status == 200
        unknown = [apikeys.new_key() for _ in range(200)]
        answers = [await answer(rig.auth, key, "192.0.2.7") for key in unknown]
        statuses = [a.status for a in answers]
        allowed = auth_module.FAILURES_PER_ADDRESS
        assert statuses[:allowed] == [401] * allowed, statuses[: allowed + 1]
        # then one lookup per window / allowed: the 200 took well under a second
        assert statuses[allowed:].count(401) <= 2 and set(statuses[allowed:]) <= {401, 429}, statuses
        # once refused, not even looked up: answered with the database out of reach
        await rig.pool.close()
        assert (await answer(rig.auth, apikeys.new_key(), "192.0.2.7")).status == 429
        assert (await answer(rig.auth, None, "192.0.2.7")).status == 401  # no key: nothing to look up
        assert (await answer(rig.auth, known, "192.0.2.7")).key_id == known_id  # a known key still passes
        # another address is not held back
        assert (await answer(rig.auth, apikeys.new_key(), "192.0.2.8")).status == 503  # (database closed)
