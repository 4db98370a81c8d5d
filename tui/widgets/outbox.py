"""`#outbox`: the outbox as PostgreSQL has it now and the relay's publishing, each figure with
its trend over the last 15 minutes. Amber: events waiting in backoff, a lag of seconds; red:
dead letters nobody has replayed."""

from __future__ import annotations

from typing import Any

from tui.model import OutboxView, Snapshot
from tui.trends import OUTBOX
from tui.widgets import format
from tui.widgets.tables import TREND, Board, Col, Tones, cell, trend

LAG_WARN_SECONDS = 5.0
ROWS = (("pending", "pending"), ("lag", "lag"), ("publish", "publish"), ("backoff", "backoff"),
        ("dead", "dead"), ("ack", "ack p99"))  # fmt: skip


class OutboxTable(Board):
    COLUMNS = (Col("name", "", 8, right=False), Col("value", "now", 9), Col(TREND, "15 min"))

    def __init__(self) -> None:
        super().__init__(id="outbox", rows=ROWS)

    def show(self, snapshot: Snapshot, trends: Any) -> None:
        tones = Tones(self)
        width = self.fill_width()
        out = snapshot.outbox
        for key, _ in ROWS:
            text, style = _value(key, out, tones)
            self.put(key, {"value": cell(text, style), TREND: trend(trends.slots(OUTBOX[key], width), tones)})


def _value(key: str, out: OutboxView, tones: Tones) -> tuple[str, Any]:
    if key == "pending":
        return format.count(out.pending), None
    if key == "lag":
        lagging = out.lag_seconds is not None and out.lag_seconds >= LAG_WARN_SECONDS
        return format.num(out.lag_seconds, "s"), tones.warn if lagging else None
    if key == "publish":
        return format.num(out.publish_rate, "/s"), None
    if key == "backoff":
        return format.count(out.in_backoff), tones.warn if out.in_backoff else None
    if key == "dead":
        return format.count(out.dead_letters_open), tones.breach if out.dead_letters_open else None
    return format.num(out.commit_to_ack_p99_ms, "ms"), None
