"""Dead letters back on the delivery path (`uoom dlq replay`), or discarded (`uoom dlq purge`).

A replay puts each selected dead letter back in the outbox with fresh attempts and the SAME event
id (consumers dedupe by it), one transaction per event, at most `rate` a second, never
automatically. Replayed twice, an event is published twice with one id, never as two events.
What was selected but cannot move is skipped with the reason: an event still pending from an
earlier replay; under a filter (not named by id), one replayed already. An id that names no
dead letter fails. Every replay and purge opens an audit record (who, where, the filter) whose
count grows in the transaction of each change, so it is exact even if the run stops half way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from uoom.stores.audit import Actor
from uoom.stores.outbox import DeadLetter, DeadLetterFilter

REPLAY, PURGE = "dlq.replay", "dlq.purge"
REPLAYED, SKIPPED, FAILED, WOULD_REPLAY = "replayed", "skipped", "failed", "would replay"


class DeadLetters(Protocol):
    async def select(self, where: DeadLetterFilter) -> list[DeadLetter]: ...
    async def open_audit(self, action: str, actor: Actor, filter: dict[str, Any]) -> int: ...
    async def replay(self, dead_letter_id: uuid.UUID, audit_id: int) -> bool: ...
    async def purgeable(self, before: datetime) -> int: ...
    async def purge(self, before: datetime, audit_id: int) -> int: ...


@dataclass(frozen=True)
class Selection:
    """What the operator picked: ids, or filters (all of them apply), or every dead letter."""

    ids: tuple[uuid.UUID, ...] = ()
    all: bool = False
    since: datetime | None = None
    event_type: str | None = None
    order_id: uuid.UUID | None = None

    @property
    def by_id(self) -> bool:
        return bool(self.ids)

    def where(self) -> DeadLetterFilter:
        return DeadLetterFilter(self.ids, self.since, self.event_type, self.order_id)

    def describe(self) -> dict[str, Any]:
        """As the audit keeps it."""
        given = {"ids": [str(i) for i in self.ids], "all": self.all, "since": self.since,
                 "type": self.event_type, "order": self.order_id and str(self.order_id)}  # fmt: skip
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in given.items() if v}


@dataclass(frozen=True)
class Step:
    id: uuid.UUID
    aggregate_id: uuid.UUID | None
    event_type: str | None
    outcome: str  # replayed | skipped | failed | would replay
    reason: str | None = None


@dataclass
class ReplayReport:
    dry_run: bool
    steps: list[Step] = field(default_factory=list)
    audit_id: int | None = None
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for s in self.steps if s.outcome == outcome)


def plan(selection: Selection, found: list[DeadLetter]) -> tuple[list[DeadLetter], list[Step]]:
    """(what moves, in the events' own order; what does not, with the reason)."""
    moving: list[DeadLetter] = []
    held: list[Step] = []
    for dead in found:
        reason = None
        if dead.state == "replaying":
            reason = "pending in the outbox from an earlier replay"
        elif dead.state != "dead" and not selection.by_id:
            reason = f"{dead.state} already; name its id to replay it again"
        if reason:
            held.append(Step(dead.id, dead.aggregate_id, dead.event_type, SKIPPED, reason))
        else:
            moving.append(dead)
    known = {d.id for d in found}
    held += [Step(i, None, None, FAILED, "no such dead letter") for i in selection.ids if i not in known]
    return moving, held


async def replay_dead_letters(
    store: DeadLetters,
    selection: Selection,
    actor: Actor,
    *,
    rate: float | None = None,
    dry_run: bool = False,
    on_step: Callable[[Step], None] = lambda _: None,
) -> ReplayReport:
    """Replay the selection at most `rate` events a second; with `dry_run`, only say what would
    move (nothing written, nothing audited)."""
    started = time.monotonic()
    moving, held = plan(selection, await store.select(selection.where()))
    report = ReplayReport(dry_run, list(held))
    if dry_run:
        report.steps += [Step(d.id, d.aggregate_id, d.event_type, WOULD_REPLAY) for d in moving]
        return report
    report.audit_id = await store.open_audit(REPLAY, actor, selection.describe())
    limiter = _limiter(rate)
    for dead in moving:
        if limiter is not None:
            await limiter.acquire()
        try:
            moved = await store.replay(dead.id, report.audit_id)
        except Exception as exc:  # noqa: BLE001 - said in the summary; the next event may pass
            step = Step(dead.id, dead.aggregate_id, dead.event_type, FAILED, f"{type(exc).__name__}: {exc}")
        else:
            outcome, reason = (REPLAYED, None) if moved else (SKIPPED, "purged or replayed meanwhile")
            step = Step(dead.id, dead.aggregate_id, dead.event_type, outcome, reason)
        report.steps.append(step)
        on_step(step)
    report.seconds = time.monotonic() - started
    return report


def _limiter(rate: float | None) -> Any:
    """A bucket of one: an event every 1/rate seconds from the first, no burst at the start
    (a bucket of `rate` would let the first second's worth through at once)."""
    if rate is None:
        return None
    from aiolimiter import AsyncLimiter

    return AsyncLimiter(1, 1 / rate)


async def purge_dead_letters(store: DeadLetters, before: datetime, actor: Actor) -> tuple[int, int]:
    """Delete the dead letters that died before `before`, audited: (deleted, audit record id)."""
    audit_id = await store.open_audit(PURGE, actor, {"before": before.isoformat()})
    return await store.purge(before, audit_id), audit_id
