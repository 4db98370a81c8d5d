"""`#status`: the top line. What is watched (the API's URL) and when the numbers were taken on
the left; on the right whether the dashboard is live, paused, held by a screen, late or failing."""

from __future__ import annotations

import time

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from tui.widgets.tables import Tones

STALE_AFTER = 3  # refresh periods without a snapshot before the numbers are called stale
SLOW_READ_MS = 250.0  # a read slower than this is said: a source is costing its timeout


class StatusBar(Horizontal):
    def __init__(self, target: str, refresh_seconds: float) -> None:
        super().__init__(id="status")
        self.target = target
        self.refresh_seconds = refresh_seconds
        self.taken_at = ""
        self.received = 0.0  # monotonic time of the last snapshot
        self.fetch_ms: float | None = None
        self.failure: str | None = None
        self.paused = ""  # why: "" (live), "paused" (p), "held" (another screen is open)
        self._drawn: dict[str, Text] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="status-where")
        yield Static(id="status-state")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._draw)  # the age of the numbers moves on without a fetch
        self._draw()

    def shown(self, taken_at: str, fetch_ms: float) -> None:
        self.taken_at, self.fetch_ms, self.failure = taken_at, fetch_ms, None
        self.received = time.monotonic()
        self._draw()

    def failed(self, failure: str) -> None:
        self.failure = failure
        self._draw()

    def set_paused(self, why: str) -> None:
        self.paused = why
        self._draw()

    def _draw(self) -> None:
        tones = Tones(self)
        where = Text(no_wrap=True, overflow="ellipsis")
        where.append(" uoom ", Style(bold=True, reverse=True))
        where.append(f" {self.target}", tones.calm)
        taken = self.taken_at[11:19] if self.taken_at else "--:--:--"
        where.append(f"  {taken} UTC", Style(bold=True))
        where.append(f" · every {self.refresh_seconds:g} s", tones.dim)
        if self.fetch_ms is not None and self.fetch_ms >= SLOW_READ_MS:
            where.append(f" · slow read {self.fetch_ms / 1000:.1f} s", tones.warn)
        for part, text in (("#status-where", where), ("#status-state", self._state(tones))):
            before = self._drawn.get(part)
            if before != text:
                self._drawn[part] = text
                resized = before is None or before.cell_len != text.cell_len
                self.query_one(part, Static).update(text, layout=resized and part == "#status-state")

    def _state(self, tones: Tones) -> Text:
        age = time.monotonic() - self.received if self.received else 0.0
        if self.paused == "paused":
            return Text(" ❚❚ paused ", tones.warn + Style(bold=True))
        if self.paused:  # another screen is open: old numbers are expected, not stale
            return Text(" ❚❚ held ", tones.dim)
        if self.failure:
            return Text(f" ✖ {self.failure} ", tones.breach)
        if self.received and age > STALE_AFTER * max(self.refresh_seconds, 1.0):
            return Text(f" stale {age:.0f} s ", tones.warn)
        return Text(" ● live ", tones.good)
