"""`uoom dash`: the platform on one screen. `DashApp(sources, refresh)` draws what
`await sources.fetch()` returns (a `Snapshot`) and its trends; it knows nothing of where the
numbers come from, so the tests give it a fake.

Polling: one fetch at a time in a worker, then a one-shot timer re-armed for the next, so polls
never overlap; none while paused (`p`) or while another screen is open; a fetch that fails or
hangs is shown on the status line and in the problems panel, the last numbers stay, and the next
poll tries again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any, Protocol

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Footer, Input

from tui.connections import reason
from tui.model import Snapshot
from tui.screens.dead_letters import DeadLettersScreen
from tui.screens.help import HelpScreen
from tui.screens.weights import WeightsScreen
from tui.widgets.channels import ChannelsPanel
from tui.widgets.health import HealthCell, HealthStrip
from tui.widgets.latency import LatencyTable
from tui.widgets.optimizer import OptimizerTable
from tui.widgets.outbox import OutboxTable
from tui.widgets.plots import FLOW_SERIES, P99_SERIES, Plot
from tui.widgets.problems import ProblemsPanel
from tui.widgets.status import StatusBar

FETCH_TIMEOUT_SECONDS = 15.0  # a fetch is bounded by the sources' own timeouts; this is the backstop
WIDE = 120  # columns from which the plots are shown
WIDER = 160  # and from which the health strip has room for each source's detail

# Calm: a dark slate ground, steel blue for what is normal; amber and red kept for what needs a look.
THEME = Theme(
    name="uoom",
    primary="#6f9fc8",
    secondary="#4e6a86",
    accent="#86b8b4",
    foreground="#c8d0da",
    background="#0f1319",
    surface="#141a22",
    panel="#1c2430",
    success="#7fb27e",
    warning="#e3a648",
    error="#e0615a",
    dark=True,
)


KEYS = (("q", "quit"), ("p", "pause"), ("question_mark", "help"), ("slash", "filter"), ("w", "weights"),
        ("d", "dead_letters"))  # fmt: skip


class Sources(Protocol):
    """What the dashboard reads: `tui.sources.DashboardSources`, or a fake in the tests."""

    settings: Any
    trends: Any

    async def fetch(self) -> Snapshot: ...


def panel(widget: Any, title: str, panel_id: str) -> Vertical:
    box = Vertical(widget, id=panel_id, classes="panel")
    box.border_title = title
    return box


class DashApp(App[None]):
    CSS_PATH = "dash.tcss"
    TITLE = "uoom dash"
    AUTO_FOCUS = "#channels"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide"), (WIDER, "-wider")]
    BINDINGS = [  # k9s's keys; the footer shows them in this order
        *[Binding(key, action, action.replace("_", " ")) for key, action in KEYS],
        Binding("escape", "leave", "back", show=False),
    ]

    def __init__(self, sources: Sources, refresh: float = 1.0) -> None:
        super().__init__()
        self.register_theme(THEME)
        self.theme = THEME.name
        self.sources = sources
        self.refresh_seconds = refresh
        self.user_paused = False
        self.snapshot: Snapshot | None = None
        self.fetches = 0  # answered
        self.failures = 0
        self.last_failure: str | None = None
        self._timer: Timer | None = None
        self._in_flight = False
        self._plots: list[Plot] | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(getattr(self.sources.settings, "effective_api_url", ""), self.refresh_seconds)
        yield HealthStrip(id="health")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield panel(LatencyTable(), "latency · ms · last 60 s", "latency-panel")
                yield Plot("p99-plot", "p99 · last 15 min", P99_SERIES)
                yield ChannelsPanel()
            with Vertical(id="right"):
                yield panel(OutboxTable(), "outbox", "outbox-panel")
                yield panel(OptimizerTable(), "optimizer", "optimizer-panel")
                yield Plot("flow-plot", "throughput · last 15 min", FLOW_SERIES)
                yield ProblemsPanel()
        yield Footer()

    def on_mount(self) -> None:
        self.screen_change_signal.subscribe(self, self._screen_changed)
        self._arm(0)

    def on_resize(self) -> None:
        if self.snapshot is not None:  # the trends take the width there is: draw them again for the new one
            self.call_after_refresh(self.draw, self.snapshot)

    # -- polling ---------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self.user_paused or len(self.screen_stack) > 1

    def _arm(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(max(delay, 0.01), self._poll, name="poll")  # a 0 s timer divides by 0

    def _poll(self) -> None:
        self._timer = None
        if self.paused or self._in_flight:
            return
        self._in_flight = True
        self.run_worker(self._fetch(), name="fetch", group="poll", exit_on_error=False)

    async def _fetch(self) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(FETCH_TIMEOUT_SECONDS, 3 * self.refresh_seconds)):
                snapshot = await self.sources.fetch()
        except Exception as exc:  # noqa: BLE001 - the dashboard stays up: the failure is shown, the next poll retries
            self._failed("fetch timed out" if isinstance(exc, TimeoutError) else reason(exc))
        else:
            self.fetches += 1
            try:
                self.draw(snapshot, (time.monotonic() - started) * 1000)
            except Exception as exc:  # a snapshot the panels cannot draw is a bug: said, not fatal
                self.log.error("cannot draw the snapshot", exc_info=exc)
                self._failed(f"cannot draw: {reason(exc)}")
        finally:
            self._in_flight = False
            if not self.paused:
                self._arm(self.refresh_seconds)

    def _failed(self, why: str) -> None:
        self.failures += 1
        self.last_failure = why
        main = self.screen_stack[0]
        main.query_one(StatusBar).failed(why)
        main.query_one(ProblemsPanel).show(failure=why)

    def draw(self, snapshot: Snapshot, fetch_ms: float = 0.0) -> None:
        """Every panel from one snapshot and the trends."""
        self.snapshot = snapshot
        self.last_failure = None
        trends = self.sources.trends
        main = self.screen_stack[0]  # the panels' screen, also under another one
        if self._plots is None:  # found once: a query walks the whole screen, every second
            self._plots = list(main.query(Plot))
        main.query_one(StatusBar).shown(snapshot.taken_at, fetch_ms)
        main.query_one(HealthStrip).show(snapshot.health)
        main.query_one(LatencyTable).show(snapshot, trends)
        main.query_one(OutboxTable).show(snapshot, trends)
        main.query_one(OptimizerTable).show(snapshot)
        redis = next((s for s in snapshot.health if s.name == "redis"), None)
        main.query_one(ChannelsPanel).show(snapshot.channels, redis)
        if not main.has_class("-narrow"):  # the plots are drawn only where they are shown
            for plot in self._plots:
                plot.show(snapshot, trends)
        main.query_one(ProblemsPanel).show(snapshot)

    def _screen_changed(self, screen: Screen[Any]) -> None:
        self._hold()

    def _hold(self) -> None:
        """Stop or restart the polls after a pause or a screen change; back to live, fetch now."""
        self.screen_stack[0].query_one(StatusBar).set_paused(
            "paused" if self.user_paused else "held" if self.paused else ""
        )
        if self.paused:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
        elif not self._in_flight and self._timer is None:
            self._arm(0)

    # -- keys ------------------------------------------------------------------------------------

    def action_pause(self) -> None:
        self.user_paused = not self.user_paused
        self._hold()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        box = self.query_one("#channel-filter", Input)
        box.add_class("-open")
        box.focus()

    @on(Input.Changed, "#channel-filter")
    def _filter(self, event: Input.Changed) -> None:
        self.query_one(ChannelsPanel).set_filter(event.value)

    @on(Input.Submitted, "#channel-filter")
    def _filter_kept(self) -> None:
        self.query_one("#channels").focus()

    def action_leave(self) -> None:
        box = self.query_one("#channel-filter", Input)
        if box.has_class("-open"):
            box.value = ""
            box.remove_class("-open")
            self.query_one("#channels").focus()
        else:
            self.screen.set_focus(None)

    def action_weights(self) -> None:
        current = self.snapshot.channels.weights if self.snapshot else None
        self.push_screen(WeightsScreen(self.sources.settings, current), self._weights_saved)

    def _weights_saved(self, weights: Any) -> None:
        if weights is not None:
            shown = "  ".join(f"{name} {value:.2f}" for name, value in asdict(weights).items())
            self.notify(f"saved: {shown}", title="weights")

    def action_dead_letters(self) -> None:
        self.push_screen(DeadLettersScreen(self.sources.settings))

    @on(HealthCell.Focused)
    def _source_focused(self, event: HealthCell.Focused) -> None:
        self.query_one(ProblemsPanel).focus_source(event.source)
        probe_soon = getattr(self.sources, "probe_soon", None)  # the real sources: a store's probe is asked at once
        if event.just_now and probe_soon is not None:
            probe_soon(event.name)
