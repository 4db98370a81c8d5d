"""The dashboard's look, as SVG snapshots (pytest-textual-snapshot) of fixed snapshots: readable
at 80x24, using the room of 200x50, calm when all is well and pointed when it is not. After a
deliberate change of the layout: `pytest tests/unit/test_dash_snapshots.py --snapshot-update`,
then look at the new SVGs before committing them."""

from __future__ import annotations

import time
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from tests.unit import dash_fakes
from tui.app import DashApp
from tui.model import Snapshot
from uoom.config import Settings

SMALL, LARGE = (80, 24), (200, 50)


def dashboard(snapshot: Snapshot) -> DashApp:
    settings = Settings(api_url="https://orders.example.net")
    return DashApp(dash_fakes.FakeSources(snapshot, settings=settings), refresh=1.0)


async def drawn(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, DashApp)
    deadline = time.monotonic() + 10
    while app.fetches < 1:
        assert time.monotonic() < deadline
        await pilot.pause(0.02)
    await pilot.pause()


def test_busy_platform_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(dashboard(dash_fakes.busy()), terminal_size=SMALL, run_before=drawn)


def test_busy_platform_at_200x50(snap_compare: Any) -> None:
    assert snap_compare(dashboard(dash_fakes.busy()), terminal_size=LARGE, run_before=drawn)


def test_widest_numbers_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(dashboard(dash_fakes.widest()), terminal_size=SMALL, run_before=drawn)


def test_redis_down_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(dashboard(dash_fakes.failing()), terminal_size=SMALL, run_before=drawn)


def test_redis_down_at_200x50(snap_compare: Any) -> None:
    assert snap_compare(dashboard(dash_fakes.failing()), terminal_size=LARGE, run_before=drawn)


def test_help_at_80x24(snap_compare: Any) -> None:
    async def help_open(pilot: Pilot[Any]) -> None:
        await drawn(pilot)
        await pilot.press("question_mark")

    assert snap_compare(dashboard(dash_fakes.busy()), terminal_size=SMALL, run_before=help_open)


def test_weights_modal_with_a_bad_value_at_80x24(snap_compare: Any) -> None:
    async def refused(pilot: Pilot[Any]) -> None:
        await drawn(pilot)
        await pilot.press("w")
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False  # a still picture
        await pilot.press("tab", "ctrl+a", "ctrl+k", "-", "1", "enter")  # time = -1, saved: refused
        await pilot.pause()

    assert snap_compare(dashboard(dash_fakes.busy()), terminal_size=SMALL, run_before=refused)
