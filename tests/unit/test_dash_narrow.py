"""Every table of the dashboard shows its widest numbers whole, at 80x24 as on a large terminal:
when a table is short of room, a text column (a channel id, an event type, an error) gives way,
clipped with an ellipsis; a number is never cut, nor run into its neighbour."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.unit import dash_fakes
from tui.app import DashApp
from tui.screens.dead_letters import DeadLettersScreen
from uoom.config import Settings
from uoom.stores.outbox import DeadLetter

SIZES = [(80, 24), (120, 40), (200, 50)]


def dead_letter(n: int) -> DeadLetter:
    died = datetime(2026, 11, 30, 19, 42, 7, tzinfo=UTC)
    return DeadLetter(id=uuid.uuid4(), event_type="order.channel_reassigned", aggregate_id=uuid.uuid4(),
                      aggregate_type="order", aggregate_version=3, data={}, attempts=10_000 + n,
                      last_error="KafkaTimeoutError: " + "the broker did not acknowledge in time " * 3,
                      error_history=[], created_at=died, failed_at=died, replayed_at=None, replay_count=99_999,
                      state="dead", published_at=None)  # fmt: skip


def screen_lines(app: DashApp) -> list[str]:
    return ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]


def shown_cells(app: DashApp, table: DataTable[Any]) -> list[tuple[str, Text]]:
    """(the table's line on the screen, a cell) for every cell of every row."""
    lines = screen_lines(app)
    region = table.content_region
    header = table.header_height if table.show_header else 0
    found = []
    for index, row in enumerate(table.ordered_rows):
        y = region.y + header + index
        if y >= region.bottom:
            break  # below the panel: scrolled to, not cut
        line = lines[y][region.x : region.right]
        found += [(line, value) for value in table.get_row(row.key) if isinstance(value, Text)]
    return found


def whole(line: str, text: str) -> bool:
    """`text` is on `line`, with a blank or the table's edge on each side."""
    start = line.find(text)
    while start >= 0:
        end = start + len(text)
        if (start == 0 or line[start - 1] == " ") and (end == len(line) or line[end] == " "):
            return True
        start = line.find(text, start + 1)
    return False


def check_table(app: DashApp, table: DataTable[Any]) -> list[str]:
    """What is wrong with the table as drawn: a number not shown whole, a text neither whole
    nor clipped with an ellipsis."""
    wrong = []
    cells = shown_cells(app, table)
    assert cells, f"#{table.id} shows no row"
    for line, value in cells:
        text = value.plain.strip()
        if not text or "\n" in text or set(text) <= set(" ▁▂▃▄▅▆▇█"):
            continue  # blank, or a trend: it takes the room there is
        if value.justify == "right":
            if not whole(line, text):
                wrong.append(f"#{table.id}: number {text!r} not whole in {line!r}")
        elif not whole(line, text) and not any(f"{text[:n]}…" in line for n in range(3, len(text))):
            wrong.append(f"#{table.id}: text {text!r} neither whole nor ellipsized in {line!r}")
    return wrong


async def drawn(pilot: Pilot[Any], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not ready():
        assert time.monotonic() < deadline
        await pilot.pause(0.02)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_panel_table_shows_its_widest_numbers_whole(size: tuple[int, int]) -> None:
    app = DashApp(dash_fakes.FakeSources(dash_fakes.widest()), refresh=1.0)
    async with app.run_test(size=size) as pilot:
        await drawn(pilot, lambda: app.fetches >= 1)
        tables = {table.id: table for table in app.screen.query(DataTable)}
        assert set(tables) == {"latency", "outbox", "channels", "optimizer"}
        wrong = [problem for table in tables.values() for problem in check_table(app, table)]
        assert not wrong, "\n".join(wrong)
        if size[0] == 80:  # the long id gave way, not a number
            assert any(dash_fakes.LONG_ID[:6] in line and "…" in line for line in screen_lines(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_dead_letters_table_shows_its_widest_numbers_whole(size: tuple[int, int]) -> None:
    # nowhere to connect: the screen's own read fails at once, then the rows are drawn from here
    nowhere = Settings(database_url=SecretStr("postgresql://uoom@127.0.0.1:1/nowhere"))
    app = DashApp(dash_fakes.FakeSources(dash_fakes.widest(), settings=nowhere), refresh=1.0)
    async with app.run_test(size=size) as pilot:
        await drawn(pilot, lambda: app.fetches >= 1)
        await pilot.press("d")
        await drawn(pilot, lambda: isinstance(app.screen, DeadLettersScreen))
        screen = app.screen
        assert isinstance(screen, DeadLettersScreen)
        report = screen.query_one("#dlq-report", Static)
        await drawn(pilot, lambda: "cannot read" in str(report.render()))
        screen._fill([dead_letter(n) for n in range(3)])
        await pilot.pause()
        table = screen.query_one("#dead-letters", DataTable)
        wrong = check_table(app, table)
        assert not wrong, "\n".join(wrong)
