"""`?`: the keys, and what the colours mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("q", "quit"),
    ("p", "pause or resume the refresh"),
    ("?", "this help"),
    ("/", "filter the channels by id (enter keeps it, esc clears it)"),
    ("w", "channel weights, validated (as `uoom channels weights set`)"),
    ("d", "dead letters: space selects, r replays after a confirmation"),
    ("tab", "next health cell or table; a focused source shows its error"),
    ("esc", "back: close a screen, clear the filter"),
)
COLOURS = (
    ("[$success]●[/] up  [$warning]◐[/] degraded  [$error]✖[/] down  ○ unknown", ""),
    ("[$warning]amber[/]", "p99 at 80% of its SLO, backoff, a channel 80% full"),
    ("[$error]red[/]  ", "p99 over its SLO, 5xx 1% or more, dead letters, a full channel"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        keys = "\n".join(f"[b $accent]{key:>5}[/]  {what}" for key, what in KEYS)
        colours = "\n".join(f"  {sample}  [dim]{what}[/]".rstrip() for sample, what in COLOURS)
        with Vertical(id="help", classes="dialog") as box:
            box.border_title = "uoom dash · help"
            yield Static(keys, id="help-keys")
            yield Static(colours, id="help-colours")
            yield Static(
                "[dim]Latency in ms over the daemons' last 60 s, trends over 15 min; "
                "docs/dashboard.md says where each number comes from.[/]",
                id="help-sources",
            )
