"""What keeps the dashboard cheap at a refresh a second: trends in slots fixed on the clock (a
sparkline moves once a slot, not at every reading), table cells drawn by a short path that makes
the same segments as Rich, and a changed cell repainting its row only."""

from __future__ import annotations

import random

import pytest
from rich.console import Console
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.renderables.styled import Styled

from tui.trends import Trends
from tui.widgets.latency import LatencyTable
from tui.widgets.tables import cell, one_line


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def by_hand(trends: Trends, clock: Clock, name: str, count: int) -> list[float | None]:
    length = trends.keep / count
    first = int(clock.now // length) - count + 1
    slots: list[float | None] = [None] * count
    for at, value in trends._series.get(name, ()):
        i = int(at // length) - first
        if 0 <= i < count:
            known = slots[i]
            slots[i] = value if known is None else max(known, value)
    return slots


def test_slots_hold_the_largest_reading_of_each_fixed_slot_of_time() -> None:
    clock = Clock()
    trends = Trends(clock=clock)
    rng = random.Random(7)
    for step in range(2000):
        trends.add("p99.status", rng.uniform(0, 10) if rng.random() > 0.1 else None)
        clock.now += rng.choice([1.0, 1.0, 0.5, 3.0, 45.0])
        if step % 7 == 0:
            for count in (10, 37):
                assert trends.slots("p99.status", count) == by_hand(trends, clock, "p99.status", count)
    assert trends.slots("never.recorded", 5) == [None] * 5
    assert trends.slots("p99.status", 0) == []


def test_a_reading_changes_only_the_current_slot_until_the_clock_moves_on() -> None:
    clock = Clock()
    trends = Trends(clock=clock)
    for i in range(900):
        trends.add("rps", 100.0 + i % 7, at=clock.now - 900 + i + 1)
    before = trends.slots("rps", 30)  # 30 s a slot
    trends.add("rps", 500.0)
    after = trends.slots("rps", 30)
    assert after[:-1] == before[:-1] and after[-1] == 500.0
    clock.now += 30
    moved = trends.slots("rps", 30)
    assert moved[:-1] == after[1:] and moved[-1] is None  # nothing read yet in the new slot


CASES = [
    Text("4.87", justify="right", no_wrap=True),
    Text("4.87", style=Style(color="red", bold=True), justify="right", no_wrap=True),
    Text(" own-bikes", justify="left", no_wrap=True),
    Text("partner-premium-long-name", justify="left", no_wrap=True),
    Text("1234567", justify="right", no_wrap=True),
    Text("", no_wrap=True),
    cell("26/40", Style(color="yellow")),
    Text.assemble((" ▁▂", "blue"), ("█", "red"), no_wrap=True),
]


@pytest.mark.parametrize("text", CASES, ids=lambda t: repr(t.plain))
@pytest.mark.parametrize("width", [3, 6, 12])
def test_the_short_cell_path_makes_the_segments_rich_makes(text: Text, width: int) -> None:
    console = Console(width=80, color_system="truecolor")
    pre, post = Style(bgcolor="black") + Style.from_meta({"row": 1, "column": 2}), Style.null()
    options = console.options.update_dimensions(width, 1).update(no_wrap=True)
    rich = console.render_lines(Styled(Padding(text, (0, 0)), pre_style=pre, post_style=post), options)[0]
    ours = one_line(console, text, width, pre, post)
    assert list(Segment.simplify(ours)) == list(Segment.simplify(rich))


class Board(App[None]):
    def compose(self) -> ComposeResult:
        yield LatencyTable()


async def test_a_changed_cell_repaints_its_row_only() -> None:
    app = Board()
    async with app.run_test(size=(100, 10)) as pilot:
        table = app.query_one(LatencyTable)
        await pilot.pause()
        table._styles_cache._dirty_lines.clear()
        table.put("status", {"p99": cell("4.37")})
        assert table.get_cell("status", "p99").plain == "4.37"
        row = table.get_row_index("status") + 1  # under the header
        assert table._styles_cache._dirty_lines == set(Region(0, row, 1, 1).line_range)
        table._styles_cache._dirty_lines.clear()
        table.put("status", {"p99": cell("4.37")})  # the same text: nothing to repaint
        assert not table._styles_cache._dirty_lines
