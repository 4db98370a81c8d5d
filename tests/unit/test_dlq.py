"""`uoom dlq`, no service: input checked before anything is connected to, the replay plan and
use case against a fake store, and the consumers that must ignore an older, replayed event."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from commands import dlq_cmd
from commands.main import app
from daemons.api.statuscache import SnapshotCache
from daemons.relay.projector import Projector, latest_snapshots
from uoom.config import Settings
from uoom.services import dead_letters as use_case
from uoom.services.dead_letters import Selection
from uoom.stores.audit import Actor
from uoom.stores.outbox import DeadLetter, DeadLetterFilter

runner = CliRunner()
NOWHERE = {"UOOM_DATABASE_URL": "postgresql://uoom@127.0.0.1:9/nowhere"}  # nothing listens on port 9


@pytest.mark.parametrize(
    "args",
    [
        ["dlq", "replay"],  # no selector
        ["dlq", "replay", "not-an-id", "--yes"],
        ["dlq", "replay", "--since", "yesterday-ish", "--yes"],
        ["dlq", "replay", "--order", "42", "--yes"],
        ["dlq", "replay", "--all", "--rate", "fast", "--yes"],
        ["dlq", "replay", "--all", "--rate", "0/s", "--yes"],
        ["dlq", "replay", str(uuid.uuid4()), "--all", "--yes"],
        ["dlq", "list", "--since", "soon"],
        ["dlq", "show", "nope"],
        ["dlq", "purge", "--before", "whenever", "--yes"],
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_connecting(args: list[str]) -> None:
    result = runner.invoke(app, args, env=NOWHERE)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error:") and "not answering" not in line  # it never got as far as connecting


def test_times_are_iso_8601_or_a_duration_ago() -> None:
    assert dlq_cmd.parse_time("2026-11-30T04:00:00Z", "--since") == datetime(2026, 11, 30, 4, tzinfo=UTC)
    assert dlq_cmd.parse_time("2026-11-30T04:00", "--since").tzinfo is not None  # no zone: UTC
    for text, ago in (("2h", timedelta(hours=2)), ("30m", timedelta(minutes=30)), ("P1D", timedelta(days=1))):
        assert abs(datetime.now(UTC) - ago - dlq_cmd.parse_time(text, "--since")) < timedelta(seconds=5)


def test_rates_are_per_second_or_per_minute() -> None:
    assert dlq_cmd.parse_rate("10/s") == 10
    assert dlq_cmd.parse_rate("10") == 10
    assert dlq_cmd.parse_rate("600/m") == 10
    assert dlq_cmd.parse_rate("0.5/s") == 0.5


def test_attempt_history_is_numbered_by_round_each_replay_starting_again() -> None:
    history = [{"attempt": a, "at": f"t{i}", "error": "e"} for i, a in enumerate([1, 2, 3, 4, 1, 2])]
    assert [(r["round"], r["attempt"]) for r in dlq_cmd.attempt_history(history)] == [
        (1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2),
    ]  # fmt: skip


# -- the use case against a fake store ---------------------------------------------------------------


def dead_letter(state: str = "dead", **changes: Any) -> DeadLetter:
    now = datetime.now(UTC)
    base = DeadLetter(uuid.uuid4(), "order.status_changed", uuid.uuid4(), "order", 1, {}, 4, "refused", [],
                      now, now, None, 0, state, None)  # fmt: skip
    return replace(base, **changes)


class FakeDeadLetters:
    def __init__(self, *found: DeadLetter, failing: set[uuid.UUID] | None = None) -> None:
        self.found = list(found)
        self.failing = failing or set()
        self.replayed: list[uuid.UUID] = []
        self.audits: list[tuple[str, dict[str, Any], list[uuid.UUID]]] = []

    async def select(self, where: DeadLetterFilter) -> list[DeadLetter]:
        return [d for d in self.found if not where.ids or d.id in where.ids]

    async def open_audit(self, action: str, actor: Actor, filter: dict[str, Any]) -> int:
        self.audits.append((action, filter, []))
        return len(self.audits)

    async def replay(self, dead_letter_id: uuid.UUID, audit_id: int) -> bool:
        if dead_letter_id in self.failing:
            raise ConnectionError("connection reset")
        self.replayed.append(dead_letter_id)
        self.audits[audit_id - 1][2].append(dead_letter_id)
        return True

    async def purgeable(self, before: datetime) -> int:
        return len(self.found)

    async def purge(self, before: datetime, audit_id: int) -> int:
        return len(self.found)


ME = Actor("ops", "host-1")


async def test_dry_run_lists_what_would_move_and_writes_nothing() -> None:
    dead, replaying = dead_letter(), dead_letter("replaying")
    store = FakeDeadLetters(dead, replaying)
    report = await use_case.replay_dead_letters(store, Selection(all=True), ME, dry_run=True)
    assert [(s.id, s.outcome) for s in report.steps] == [
        (replaying.id, use_case.SKIPPED), (dead.id, use_case.WOULD_REPLAY),
    ]  # fmt: skip
    assert store.replayed == [] and store.audits == []


async def test_filters_skip_replayed_ones_but_an_id_replays_again_and_unknown_ids_fail() -> None:
    delivered, dead = dead_letter("delivered", replay_count=1), dead_letter()
    store = FakeDeadLetters(delivered, dead)
    by_filter = await use_case.replay_dead_letters(store, Selection(all=True), ME)
    assert store.replayed == [dead.id]
    assert by_filter.count(use_case.SKIPPED) == 1 and by_filter.count(use_case.REPLAYED) == 1

    unknown = uuid.uuid4()
    by_id = await use_case.replay_dead_letters(store, Selection(ids=(delivered.id, unknown)), ME)
    assert store.replayed == [dead.id, delivered.id]
    assert [(s.id, s.outcome) for s in by_id.steps] == [(unknown, use_case.FAILED), (delivered.id, use_case.REPLAYED)]
    assert store.audits[-1] == ("dlq.replay", {"ids": [str(delivered.id), str(unknown)]}, [delivered.id])


async def test_a_failing_event_is_counted_and_the_rest_still_move() -> None:
    first, second = dead_letter(), dead_letter()
    store = FakeDeadLetters(first, second, failing={first.id})
    steps: list[use_case.Step] = []
    report = await use_case.replay_dead_letters(store, Selection(all=True), ME, on_step=steps.append)
    assert (report.count(use_case.FAILED), report.count(use_case.REPLAYED)) == (1, 1)
    assert "ConnectionError" in (report.steps[0].reason or "") and steps == report.steps


# -- consumers: an older, replayed event changes nothing ---------------------------------------------


def snapshot(order_id: str, version: int, status: str, channel: str | None = None) -> dict[str, Any]:
    return {"id": order_id, "customerId": "c", "status": status, "version": version, "channelId": channel,
            "createdAt": "2026-11-30T05:00:00+00:00", "updatedAt": "2026-11-30T05:00:00+00:00"}  # fmt: skip


def test_status_cache_keeps_the_newer_snapshot_when_an_older_event_is_replayed() -> None:
    cache = SnapshotCache(ttl_ms=60_000, size=10)
    cache.put(snapshot("o1", 3, "PREPARING"))
    assert not cache.refresh(snapshot("o1", 2, "CONFIRMED"))  # the replayed dead letter
    assert cache.get("o1") == snapshot("o1", 3, "PREPARING")
    assert cache.refresh(snapshot("o1", 4, "READY_FOR_PICKUP"))
    assert cache.get("o1")["version"] == 4  # type: ignore[index]


class FakeDynamoDB:
    """BatchGetItem and a conditional PutItem, as the projector uses them."""

    def __init__(self, versions: dict[str, int]) -> None:
        self.versions = versions
        self.puts: list[dict[str, Any]] = []

    async def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # boto's argument name
        [(table, request)] = RequestItems.items()
        ids = [k["orderId"]["S"] for k in request["Keys"]]
        items = [{"orderId": {"S": i}, "version": {"N": str(self.versions[i])}} for i in ids if i in self.versions]
        return {"Responses": {table: items}}

    async def put_item(self, **request: Any) -> None:
        self.puts.append(request)


async def test_projector_writes_nothing_for_an_event_older_than_the_item() -> None:
    import asyncio

    import orjson

    replayed = orjson.dumps({"data": {"order": snapshot("o1", 2, "CONFIRMED")}})
    newest, unusable = latest_snapshots([replayed])
    ddb = FakeDynamoDB({"o1": 3})
    projector = Projector(Settings())
    assert await projector._apply(ddb, list(newest.values()), asyncio.Event())
    assert ddb.puts == [] and unusable == 0
    assert projector.stats.current == 1 and projector.stats.applied == 0
    # in one poll with the newer event, the older one is dropped before DynamoDB is asked
    newer = orjson.dumps({"data": {"order": snapshot("o1", 3, "PREPARING")}})
    assert latest_snapshots([newer, replayed])[0]["o1"]["version"] == 3
