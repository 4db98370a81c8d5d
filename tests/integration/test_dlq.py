"""`uoom dlq` against the real stack: a poison event the broker refuses reaches the dead letters,
the CLI shows it, a dry run changes nothing, a replay delivers it once with its own id (twice
replayed: twice, one id), the rate bound holds, purge asks first, and every change is audited."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from click.testing import Result
from typer.testing import CliRunner

from commands.main import app
from daemons.optimizer.load_tracker import LoadTracker
from daemons.relay import Relay
from tests.integration.relay_support import (
    db,
    kafka_topics,
    pending,
    read_topic,
    relay_dsn,
    relay_settings,
    running,
    until,
    write_events,
)
from uoom.stores import outbox, redis_keys

__all__ = ["relay_dsn"]  # fixtures

runner = CliRunner()

# The documented --json shapes (docs/cli.md, "uoom dlq")
LIST_KEYS = {"id", "eventType", "aggregateId", "aggregateVersion", "attempts", "lastError", "createdAt", "failedAt",
             "state", "replayCount", "replayedAt", "publishedAt"}  # fmt: skip
SHOW_KEYS = LIST_KEYS | {"aggregateType", "data", "errorHistory", "replays"}
REPLAY_KEYS = {"dryRun", "replayed", "skipped", "failed", "wouldReplay", "auditId", "seconds", "ratePerSecond",
               "events"}  # fmt: skip
STEP_KEYS = {"id", "aggregateId", "eventType", "outcome", "reason"}
HISTORY_KEYS = {"id", "at", "action", "osUser", "host", "filter", "count", "eventIds"}


async def uoom(dsn: str, *args: str, input: str | None = None) -> Result:
    """The CLI in a thread (it runs its own event loop), against the test's database."""
    env = {"UOOM_DATABASE_URL": dsn, "UOOM_DEBUG": "false"}
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env, input=input)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return orjson.loads(result.stdout)


@pytest.fixture
async def strict_topic(stack: Any, settings: Any) -> AsyncIterator[str]:
    """A topic whose broker refuses records stamped more than a minute ahead: a real poison."""
    async with kafka_topics(settings.kafka_bootstrap, **{"message.timestamp.after.max.ms": "60000"}) as name:
        yield name


async def accept_any_timestamp(bootstrap: str, topic: str) -> None:
    """The operator's fix for the poison: the broker now takes future timestamps."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        limit = {"message.timestamp.after.max.ms": str(2**63 - 1)}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=limit)])
    finally:
        await admin.close()
    await asyncio.sleep(1)  # the broker applies topic configs asynchronously


async def test_poison_event_dead_lettered_shown_dry_run_then_replayed_once_with_its_id(
    settings: Any, relay_dsn: str, strict_topic: str
) -> None:
    cfg = relay_settings(settings, relay_dsn, strict_topic, relay_retry_base_seconds=0.1)
    order = uuid.uuid4()
    async with db(relay_dsn) as pool:
        [poison] = await write_events(pool, [(order, 1)], created_at=datetime.now(UTC) + timedelta(days=1))
        async with running(Relay(cfg)):
            await until(lambda: pool.fetchval("SELECT count(*) = 1 FROM dead_letters"), 20)

        # list and show display it
        [listed] = as_json(await uoom(relay_dsn, "dlq", "list", "--json"))
        assert set(listed) == LIST_KEYS
        assert (listed["id"], listed["aggregateId"], listed["state"]) == (str(poison.id), str(order), "dead")
        assert listed["attempts"] == 4 and "InvalidTimestamp" in listed["lastError"]
        table = await uoom(relay_dsn, "dlq", "list")
        assert str(poison.id) in table.stdout and table.exit_code == 0
        shown = as_json(await uoom(relay_dsn, "dlq", "show", str(poison.id), "--json"))
        assert set(shown) == SHOW_KEYS
        assert [a["attempt"] for a in shown["errorHistory"]] == [1, 2, 3, 4]
        assert shown["data"]["order"]["version"] == 1 and shown["replays"] == []
        assert str(order) in (await uoom(relay_dsn, "dlq", "show", str(poison.id))).stdout

        # a dry run lists exactly what would move and changes nothing
        before = await _state(pool)
        dry = as_json(await uoom(relay_dsn, "dlq", "replay", "--all", "--dry-run", "--json"))
        assert set(dry) == REPLAY_KEYS and dry["dryRun"] and dry["wouldReplay"] == 1 and dry["auditId"] is None
        assert [(e["id"], e["outcome"]) for e in dry["events"]] == [(str(poison.id), "would replay")]
        assert set(dry["events"][0]) == STEP_KEYS
        assert await _state(pool) == before

        # fixed at the broker, replayed: delivered once, with its original id and envelope
        await accept_any_timestamp(settings.kafka_bootstrap, strict_topic)
        done = as_json(await uoom(relay_dsn, "dlq", "replay", str(poison.id), "--yes", "--json"))
        assert (done["replayed"], done["skipped"], done["failed"]) == (1, 0, 0)
        async with running(Relay(cfg)):
            await until(lambda: _drained(pool), 20)
        [received] = await read_topic(settings.kafka_bootstrap, strict_topic, expect=1)
        assert received.id == str(poison.id) == received.body["id"]
        assert received.body["occurredAt"] == poison_time(listed)
        [record] = as_json(await uoom(relay_dsn, "dlq", "history", "--json"))
        assert set(record) == HISTORY_KEYS
        assert (record["action"], record["count"], record["eventIds"]) == ("dlq.replay", 1, [str(poison.id)])
        assert record["filter"] == {"ids": [str(poison.id)]} and record["osUser"] and record["host"]

        # a filter does not take it again; its id does: published twice, one id, never two events
        again = as_json(await uoom(relay_dsn, "dlq", "replay", "--all", "--yes", "--json"))
        assert (again["replayed"], again["skipped"]) == (0, 1)
        as_json(await uoom(relay_dsn, "dlq", "replay", str(poison.id), "--yes", "--json"))
        async with running(Relay(cfg)):
            await until(lambda: _drained(pool), 20)
        received = await read_topic(settings.kafka_bootstrap, strict_topic, expect=1)
        assert [r.id for r in received] == [str(poison.id)] * 2
        shown = as_json(await uoom(relay_dsn, "dlq", "show", str(poison.id), "--json"))
        assert (shown["state"], shown["replayCount"], len(shown["replays"])) == ("delivered", 2, 2)
        assert await pool.fetchval("SELECT count(*) FROM outbox_events") == 1


def poison_time(listed: dict[str, Any]) -> str:
    return datetime.fromisoformat(listed["createdAt"]).isoformat()


async def _drained(pool: Any) -> bool:
    return await pending(pool) == 0


async def _state(pool: Any) -> list[Any]:
    return [
        await pool.fetch("SELECT * FROM outbox_events ORDER BY id"),
        await pool.fetch("SELECT * FROM dead_letters ORDER BY id"),
        await pool.fetch("SELECT * FROM operator_audit"),
    ]


async def dead_lettered(pool: Any, count: int, created_at: datetime | None = None) -> list[uuid.UUID]:
    """`count` events dead-lettered the way the relay does it (the outbox module's record)."""
    written = await write_events(pool, [(uuid.uuid4(), 1) for _ in range(count)], created_at=created_at)
    async with pool.acquire() as conn, conn.transaction():
        claimed = await outbox.claim(conn, count, count)
        await outbox.record(conn, [], [], [(e, "refused by the broker") for e in claimed])
    return [w.id for w in written]


async def test_replay_holds_the_rate_bound(relay_dsn: str) -> None:
    async with db(relay_dsn) as pool:
        ids = await dead_lettered(pool, 20)
        started = time.monotonic()
        done = as_json(await uoom(relay_dsn, "dlq", "replay", "--all", "--rate", "10/s", "--yes", "--json"))
        elapsed = time.monotonic() - started
        times = sorted(r["replayed_at"] for r in await pool.fetch("SELECT replayed_at FROM outbox_events"))
    assert done["replayed"] == 20 and {e["id"] for e in done["events"]} == {str(i) for i in ids}
    measured = (len(times) - 1) / (times[-1] - times[0]).total_seconds()  # events a second, first to last
    print(f"20 dead letters at --rate 10/s: {elapsed:.2f} s wall, {measured:.2f} events/s measured")
    assert elapsed >= 1.85 and done["seconds"] >= 1.85
    assert 8.0 <= measured <= 10.5


async def test_a_replayed_event_counts_its_outbox_lag_from_the_replay(relay_dsn: str) -> None:
    async with db(relay_dsn) as pool:
        [old] = await dead_lettered(pool, 1, created_at=datetime.now(UTC) - timedelta(hours=2))
        as_json(await uoom(relay_dsn, "dlq", "replay", str(old), "--yes", "--json"))
        state = await outbox.status(pool)
        [envelope_time] = await pool.fetch("SELECT created_at FROM outbox_events")
    assert state.pending == 1 and state.lag_seconds < 60  # not two hours: the relay is not behind
    assert datetime.now(UTC) - envelope_time["created_at"] > timedelta(hours=2)  # the envelope keeps its time
    assert (state.dead_letters, state.dead_letters_open) == (1, 0)


async def test_purge_asks_first_refuses_without_a_terminal_and_is_audited(
    relay_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db(relay_dsn) as pool:
        ids = await dead_lettered(pool, 3)
        cutoff = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()

        refused = await uoom(relay_dsn, "dlq", "purge", "--before", cutoff)
        assert refused.exit_code == 2 and "--yes" in refused.stderr and refused.stdout == ""
        monkeypatch.setattr("commands._confirm.interactive", lambda: True)
        declined = await uoom(relay_dsn, "dlq", "purge", "--before", cutoff, input="n\n")
        assert declined.exit_code == 1 and "3 dead letters" in declined.stderr
        assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 3
        assert await pool.fetchval("SELECT count(*) FROM operator_audit") == 0

        purged = as_json(await uoom(relay_dsn, "dlq", "purge", "--before", cutoff, "--yes", "--json"))
        assert set(purged) == {"deleted", "before", "auditId"} and purged["deleted"] == 3
        assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 0
    [record] = as_json(await uoom(relay_dsn, "dlq", "history", "--json"))
    assert (record["id"], record["action"], record["count"]) == (purged["auditId"], "dlq.purge", 3)
    assert set(record["eventIds"]) == {str(i) for i in ids} and record["filter"] == {"before": purged["before"]}


async def test_replay_asks_first_and_without_a_terminal_or_yes_refuses(
    relay_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db(relay_dsn) as pool:
        await dead_lettered(pool, 2)
        before = await _state(pool)
        refused = await uoom(relay_dsn, "dlq", "replay", "--all")
        assert refused.exit_code == 2 and "uoom dlq replay --all --yes" in refused.stderr
        assert await _state(pool) == before
        monkeypatch.setattr("commands._confirm.interactive", lambda: True)
        declined = await uoom(relay_dsn, "dlq", "replay", "--all", input="n\n")
        assert declined.exit_code == 1 and "Replay 2 dead letters?" in declined.stderr
        assert await _state(pool) == before
        accepted = await uoom(relay_dsn, "dlq", "replay", "--all", input="y\n")
        assert accepted.exit_code == 0 and "replayed 2, skipped 0, failed 0" in accepted.stderr
        assert await pending(pool) == 2


# -- the optimizer's channel load: an older, replayed event moves nothing ---------------------------


def event(order_id: str, version: int, status: str, channel: str | None) -> bytes:
    order = {"id": order_id, "status": status, "version": version, "channelId": channel,
             "updatedAt": "2026-11-30T05:00:00+00:00"}  # fmt: skip
    return orjson.dumps({"id": str(uuid.uuid4()), "version": version, "data": {"order": order}})


async def test_load_tracker_ignores_an_older_replayed_event(stack: Any, settings: Any) -> None:
    redis = aioredis.from_url(settings.redis_url.get_secret_value())
    tracker = LoadTracker(settings, redis)
    order = str(uuid.uuid4())
    a, b = f"ch-{uuid.uuid4().hex[:8]}", f"ch-{uuid.uuid4().hex[:8]}"

    async def where() -> tuple[str | None, int, int]:
        slot = await redis.hget(redis_keys.ORDER_SLOT, order)
        loads = [int(await redis.hget(redis_keys.CHANNEL_LOAD, c) or 0) for c in (a, b)]
        return (slot.decode() if slot else None, *loads)  # type: ignore[return-value]

    try:
        await tracker.apply(event(order, 1, "CONFIRMED", a))
        await tracker.apply(event(order, 2, "CONFIRMED", b))  # reassigned
        assert await where() == (b, 0, 1)
        await tracker.apply(event(order, 1, "CONFIRMED", a))  # the first event, replayed late
        assert await where() == (b, 0, 1)  # not moved back
        await tracker.apply(event(order, 3, "DELIVERED", b))
        assert await where() == (None, 0, 0)
        await tracker.apply(event(order, 2, "CONFIRMED", b))  # replayed after the release
        assert await where() == (None, 0, 0)  # the released slot is not taken again
        assert tracker.applied == 3
    finally:
        await redis.delete(redis_keys.order_load_version(order))
        await redis.hdel(redis_keys.CHANNEL_LOAD, a, b)
        await redis.aclose()
