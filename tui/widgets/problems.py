"""`#problems`: what needs a look. The sources that are not up, with their errors, then the
daemons' own problem lines; the focused health cell's detail and error while it has the focus."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from tui.model import DEGRADED, DOWN, Snapshot, SourceHealth
from tui.widgets.health import DOT
from tui.widgets.tables import Tones, titled


class ProblemsPanel(Static):
    shown = Text()

    def __init__(self) -> None:
        super().__init__(id="problems", classes="panel")
        self.border_title = "problems"
        self.snapshot: Snapshot | None = None
        self.focused: SourceHealth | None = None
        self.failure: str | None = None

    def show(self, snapshot: Snapshot | None = None, failure: str | None = None) -> None:
        if snapshot is not None:
            self.snapshot = snapshot
        self.failure = failure
        self._draw()

    def focus_source(self, source: SourceHealth | None) -> None:
        self.focused = source
        self._draw()

    def _draw(self) -> None:
        tones = Tones(self)
        text = Text(no_wrap=False, overflow="fold")
        if self.focused is not None:
            source = self.focused
            titled(self, f"source · {source.name}")
            self.add_class("-source")
            text.append(f"{DOT.get(source.state, '○')} {source.name} is {source.state}", tones.of_state(source.state))
            if source.error:
                text.append(f"\n{source.error}", tones.breach)
            text.append(f"\n{source.detail}", tones.dim)
            self._update(text)
            return
        self.remove_class("-source")
        lines = self._lines(tones)
        titled(self, f"problems · {len(lines)}" if lines else "problems")
        for i, (line, style) in enumerate(lines):
            text.append(("\n" if i else "") + line, style)
        if not lines:
            text.append("all clear: every source up", tones.dim)
        self._update(text)

    def _update(self, text: Text) -> None:
        if text != self.shown:
            self.shown = text
            self.update(text, layout=False)

    def _lines(self, tones: Tones) -> list[tuple[str, Style | None]]:
        lines: list[tuple[str, Style | None]] = []
        if self.failure:
            lines.append((f"dashboard: {self.failure}", tones.breach))
        if self.snapshot is None:
            return lines
        for source in self.snapshot.health:
            if source.state in (DOWN, DEGRADED):
                mark = DOT[source.state]
                lines.append((f"{mark} {source.name}: {source.error or source.detail}", tones.of_state(source.state)))
        lines += [(line, tones.warn) for line in self.snapshot.problems]
        return lines
