"""The dashboard's behaviour with a fake source (tests/unit/dash_fakes.py): what each panel shows
of a known snapshot, the keys, the polling (never overlapping, paused by `p` and by any other
screen), and a fetch that fails or never ends, which is shown and does not stop the screen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.unit import dash_fakes
from tests.unit.dash_fakes import FakeSources
from tui import app as dash
from tui.app import DashApp
from tui.model import Snapshot
from tui.screens.help import HelpScreen
from tui.screens.weights import WeightsScreen
from tui.widgets import format
from tui.widgets.channels import weights_line

SIZE = (120, 40)


async def until(pilot: Pilot[Any], ready: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, "the dashboard did not get there in time"
        await pilot.pause(0.02)


def cell(app: DashApp, table: str, row: str, column: str) -> str:
    value = app.query_one(f"#{table}", DataTable).get_cell(row, column)
    return value.plain if isinstance(value, Text) else str(value)


def status(app: DashApp) -> str:
    return str(app.query_one("#status-state", Static).render())


async def test_every_panel_shows_the_snapshot_in_the_named_cells() -> None:
    app = DashApp(FakeSources(dash_fakes.busy()), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 1)
        assert cell(app, "latency", "status", "p99") == "4.37"
        assert cell(app, "latency", "create", "p50") == "18.4"
        assert cell(app, "latency", "status", "rps") == "313"
        assert cell(app, "latency", "other", "err") == "0.4%"
        assert cell(app, "latency", "create", "trend").strip()  # 15 minutes of P99 as bars
        assert cell(app, "outbox", "pending", "value") == "42"
        assert cell(app, "outbox", "lag", "value") == "0.31 s"
        assert cell(app, "outbox", "dead", "value") == "2"
        assert cell(app, "outbox", "ack", "value") == "7.42 ms"
        assert cell(app, "optimizer", "solve", "value") == "12.6 ms"
        assert cell(app, "optimizer", "breaker", "value") == "closed"
        assert cell(app, "optimizer", "mix", "value") == "97/2/1 %"
        channels = app.query_one("#channels", DataTable)
        assert [row.value for row in channels.rows] == [c.channel_id for c in dash_fakes.RANKING]
        assert cell(app, "channels", "own-cars", "load").strip() == "25/25"
        assert cell(app, "channels", "own-bikes", "score") == "0.81"
        assert cell(app, "channels", "own-bikes", "capacity") == "0.35"
        assert "cost 0.40" in str(app.query_one("#weights", Static).render())
        for name in ("postgres", "redis", "kafka", "dynamodb", "api", "optimizer", "relay"):
            assert app.query_one(f"#health-{name}").has_class("up")


async def test_a_source_that_goes_down_turns_its_cell_down_and_says_why() -> None:
    app = DashApp(FakeSources(dash_fakes.busy(), dash_fakes.failing()), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 2)
        redis = app.query_one("#health-redis")
        assert redis.has_class("down") and not redis.has_class("up")
        assert app.query_one("#health-api").has_class("degraded")
        problems = str(app.query_one("#problems", Static).render())
        assert "ConnectionRefusedError" in problems
        assert app.query_one("#channels", DataTable).row_count == 0
        assert "redis is down" in str(app.query_one("#weights", Static).render())
        assert cell(app, "latency", "other", "p99") == format.NONE  # unknown, not zero
        redis.focus()
        await pilot.pause()
        assert "redis is down" in str(app.query_one("#problems", Static).render())


async def test_polls_never_overlap_and_the_next_is_armed_after_each_answer() -> None:
    class Slow(FakeSources):
        in_flight = most = 0

        async def fetch(self) -> Snapshot:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            await asyncio.sleep(0.15)  # three refresh periods
            self.in_flight -= 1
            return await super().fetch()

    source = Slow()
    app = DashApp(source, refresh=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 3)
    assert source.most == 1


async def test_p_pauses_the_polls_and_p_again_fetches_at_once() -> None:
    source = FakeSources()
    app = DashApp(source, refresh=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 1)
        await pilot.press("p")
        assert "paused" in status(app)
        await pilot.pause(0.1)  # a fetch in flight may finish
        calls = source.calls
        await pilot.pause(0.3)
        assert source.calls == calls
        await pilot.press("p")
        await until(pilot, lambda: source.calls > calls)
        assert "live" in status(app)


async def test_another_screen_holds_the_polls_until_it_closes() -> None:
    source = FakeSources()
    app = DashApp(source, refresh=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 1)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause(0.1)
        calls = source.calls
        await pilot.pause(0.3)
        assert source.calls == calls
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await until(pilot, lambda: source.calls > calls)


async def test_a_failing_fetch_is_shown_and_the_next_one_recovers() -> None:
    source = FakeSources(RuntimeError("sources exploded"), dash_fakes.busy())
    app = DashApp(source, refresh=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.failures >= 1)  # the next poll is a second away
        assert "RuntimeError: sources exploded" in status(app)
        assert "sources exploded" in str(app.query_one("#problems", Static).render())
        await until(pilot, lambda: app.fetches >= 1)
        assert "live" in status(app)
        assert cell(app, "outbox", "pending", "value") == "42"


async def test_a_fetch_that_never_answers_is_cut_short_and_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    class Hung(FakeSources):
        async def fetch(self) -> Snapshot:
            if self.calls == 0:
                self.calls += 1
                await asyncio.sleep(3600)
            return await super().fetch()

    monkeypatch.setattr(dash, "FETCH_TIMEOUT_SECONDS", 0.2)
    app = DashApp(Hung(), refresh=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.failures >= 1)
        assert "timed out" in status(app)
        await until(pilot, lambda: app.fetches >= 1)


async def test_slash_filters_the_channels_by_id_and_escape_clears_it() -> None:
    app = DashApp(FakeSources(), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 1)
        await pilot.press("slash", "o", "w", "n")
        channels = app.query_one("#channels", DataTable)
        await until(pilot, lambda: channels.row_count == 2)
        assert [row.value for row in channels.rows] == ["own-bikes", "own-cars"]
        await pilot.press("enter")
        assert channels.has_focus
        await pilot.pause(0.15)  # the next polls keep the filter
        assert channels.row_count == 2
        await pilot.press("escape")
        await until(pilot, lambda: channels.row_count == len(dash_fakes.RANKING))
        assert not app.query_one("#channel-filter", Input).has_class("-open")


async def test_the_weights_modal_refuses_bad_input_before_connecting_to_anything() -> None:
    app = DashApp(FakeSources(), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 1)
        await pilot.press("w")
        assert isinstance(app.screen, WeightsScreen)
        assert app.screen.query_one("#weight-cost", Input).value == "0.4"  # the weights in use
        assert str(app.screen.query_one("#weights-error", Static).render()) == ""
        screen = app.screen

        def says(widget: str, text: str) -> Callable[[], bool]:
            return lambda: text in str(screen.query_one(widget, Static).render())

        # Each edit is checked as it is typed (the preview says why it is refused) and the check
        # clears the last save's error: wait for it before saving, or it would clear the new one.
        screen.query_one("#weight-time", Input).value = "fast"
        await until(pilot, says("#weights-preview", "not a number"))
        await pilot.click("#weights-save")
        await until(pilot, says("#weights-error", "not a number"))
        assert app.screen is screen
        screen.query_one("#weight-time", Input).value = "-1"
        await until(pilot, says("#weights-preview", ">= 0"))
        await pilot.pause(0.6)  # two clicks this close on one spot would be a double click
        await pilot.click("#weights-save")
        await until(pilot, says("#weights-error", ">= 0"))
        await pilot.press("escape")
        assert not isinstance(app.screen, WeightsScreen)


def test_numbers_have_three_figures_and_unknowns_a_dash() -> None:
    assert [format.num(v) for v in (4.872, 12.34, 123.4, 1234.5, 0.0)] == ["4.87", "12.3", "123", "1234", "0.00"]
    assert format.num(None) == format.NONE == "-"
    assert format.num(7.424, "ms") == "7.42 ms"
    assert format.share(0.0123) == "1.2%"
    assert format.count(None) == "-"


def test_trend_bars_scale_from_zero_and_keep_a_spike_in_its_bucket() -> None:
    assert format.bars([1.0, 4.0]) == "▃█"
    assert format.bars([0.0, 0.0]) == "▁▁"
    spike = format.buckets([0.0] * 90 + [8.0] + [0.0] * 9, 10)  # 100 readings in 10 columns, by their largest
    assert spike == [0.0] * 9 + [8.0]
    assert format.columns([0.0, 1.0, 2.0], 2) == ["  █", "▁██"]  # two rows: 16 steps


def test_the_weights_line_shortens_to_fit() -> None:
    weights = {"cost": 0.4, "time": 0.3, "quality": 0.2, "capacity": 0.1}
    assert weights_line(weights, 100) == "weights  cost 0.40 · time 0.30 · quality 0.20 · capacity 0.10"
    assert weights_line(weights, 48) == "weights cost 0.40 time 0.30 qual 0.20 cap 0.10"
    assert weights_line(None) == "weights  -"


async def test_focusing_a_store_cell_asks_for_its_probe_at_once() -> None:
    class Probed(FakeSources):
        def __init__(self) -> None:
            super().__init__()
            self.asked: list[str] = []

        def probe_soon(self, name: str) -> None:
            self.asked.append(name)

    sources = Probed()
    app = DashApp(sources, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 2, 20)
        app.query_one("#health-kafka").focus()
        await until(pilot, lambda: sources.asked == ["kafka"], 20)
        await until(pilot, lambda: app.fetches >= 4, 20)  # the polls that follow do not ask again
        assert sources.asked == ["kafka"]
