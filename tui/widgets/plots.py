"""The plots a large terminal has room for: each series of the last 15 minutes as labelled bars
three rows tall (`#p99-plot`: the P99 of each route group, coloured by its level; `#flow-plot`: requests
and events per second, the outbox's pending events). Hidden on a small terminal (dash.tcss)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static

from tui.model import IDLE, ROUTE_GROUPS, Snapshot, level
from tui.trends import OUTBOX, P99, RPS
from tui.widgets import format
from tui.widgets.tables import Tones, trend


@dataclass(frozen=True)
class Series:
    key: str  # the Trends series
    label: str
    unit: str = ""

    def show(self, value: float | None) -> str:
        return format.num(value, self.unit) if self.unit else format.plain(value)  # a count: 42, not 42.0


P99_SERIES = tuple(Series(P99[g], g, "ms") for g in ROUTE_GROUPS)
FLOW_SERIES = (Series(RPS, "API requests", "/s"), Series(OUTBOX["publish"], "published", "/s"),
               Series(OUTBOX["pending"], "pending"))  # fmt: skip


class Plot(Vertical):
    def __init__(self, id: str, title: str, series: Sequence[Series]) -> None:
        super().__init__(id=id, classes="panel plot")
        self.border_title = title
        self.series = series
        self.shown: dict[str, tuple[Text, Text]] = {}

    def compose(self) -> ComposeResult:
        for s in self.series:
            yield Label(s.label, id=f"{self.id}-{s.key.replace('.', '-')}-label", classes="plot-label")
            yield Static(id=f"{self.id}-{s.key.replace('.', '-')}", classes="bars")

    def show(self, snapshot: Snapshot, trends: Any) -> None:
        tones = Tones(self)
        slos = {P99[row.group]: row.slo_ms for row in snapshot.latency}
        for s in self.series:
            key = s.key.replace(".", "-")
            bars = self.query_one(f"#{self.id}-{key}", Static)
            slots = trends.slots(s.key, max(bars.size.width - 1, 0))
            slo = slos.get(s.key)
            worst = max((v for v in slots if v is not None), default=None)
            state = IDLE if slo is None else level(worst, slo)
            label = Text(no_wrap=True, overflow="ellipsis")
            label.append(f"{s.label:<13}", "bold")
            label.append(f"now {s.show(trends.latest(s.key))}")
            label.append(f"   max {s.show(worst)}", tones.of(state) or tones.dim)
            if slo is not None:
                label.append(f"   SLO {slo:g} ms", tones.dim)
            drawn = trend(slots, tones, slo, height=bars.size.height or 1)
            label_was, drawn_was = self.shown.get(key, (None, None))
            self.shown[key] = (label, drawn)
            if label != label_was:  # fixed sizes: a layout pass of the whole screen costs more than the drawing
                self.query_one(f"#{self.id}-{key}-label", Label).update(label, layout=False)
            if drawn != drawn_was:  # the bars move once a slot (tui/trends.py), the "now" every reading
                bars.update(drawn, layout=False)
