"""The health strip: one cell per store and daemon, coloured by its state (a CSS class: up,
degraded, down, unknown). A cell takes the focus; the problems panel then says its detail and error."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label

from tui.model import DAEMONS, DEGRADED, DOWN, STORES, UNKNOWN, UP, SourceHealth

STATES = (UP, DEGRADED, DOWN, UNKNOWN)
DOT = {UP: "●", DEGRADED: "◐", DOWN: "✖", UNKNOWN: "○"}


class HealthCell(Horizontal, can_focus=True):
    """`#health-<name>`: a dot, the name, and (on a wide screen) the detail line."""

    class Focused(Message):
        def __init__(self, source: SourceHealth | None, name: str = "", just_now: bool = False) -> None:
            super().__init__()
            self.source = source
            self.name, self.just_now = name, just_now  # the cell's source; it has just taken the focus

    def __init__(self, name: str) -> None:
        super().__init__(id=f"health-{name}", classes=UNKNOWN)
        self.source_name = name
        self.source: SourceHealth | None = None

    def compose(self) -> ComposeResult:
        yield Label(DOT[UNKNOWN], classes="dot")
        yield Label(self.source_name, classes="name")
        yield Label("", classes="detail")

    def show(self, source: SourceHealth) -> None:
        if source == self.source:
            return  # a class change restyles the cell: only when something changed
        before, self.source = self.source, source
        state = source.state if source.state in STATES else UNKNOWN
        if not self.has_class(state):  # a new state: the cell's classes, so its colours
            self.set_classes({*(self.classes - set(STATES)), state})
            self.query_one(".dot", Label).update(DOT[state], layout=False)  # one cell wide, whatever the state
        if before is None or before.detail != source.detail:  # the detail moves every read (its latency):
            self.query_one(".detail", Label).update(source.detail, layout=False)  # hidden, or 1fr: no layout
        if self.tooltip != (source.error or source.detail):
            self.tooltip = source.error or source.detail
        if self.has_focus:
            self.post_message(self.Focused(source))

    def on_focus(self) -> None:
        self.post_message(self.Focused(self.source, self.source_name, just_now=True))

    def on_blur(self) -> None:
        self.post_message(self.Focused(None))


class HealthStrip(Horizontal):
    """`#health`: the stores, then the daemons; a source the snapshot stops naming (dax) goes."""

    def compose(self) -> ComposeResult:
        for name in (*STORES, *DAEMONS):
            cell = HealthCell(name)
            cell.display = name != "dax"  # shown once a snapshot names it (dax_endpoint set)
            yield cell

    def show(self, sources: list[SourceHealth]) -> None:
        named = {s.name: s for s in sources}
        for cell in self.query_children(HealthCell):
            source = named.get(cell.source_name)
            cell.display = source is not None or cell.source_name != "dax"
            if source is not None:
                cell.show(source)
            elif cell.source_name != "dax":
                cell.show(SourceHealth(cell.source_name, UNKNOWN, "not reported"))
