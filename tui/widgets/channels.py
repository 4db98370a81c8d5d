"""`#channels`: the live composite ranking from Redis (rank, channel, composite and criterion
scores, in-flight load against capacity), `/` filters it by channel id; `#weights`: the weights
it was built with. A channel near its capacity is amber, at it red."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from tui.model import UP, ChannelsView, RankedChannel, SourceHealth
from tui.widgets import format
from tui.widgets.tables import Col, Table, Tones, add_columns, cell, clipped, fit, titled

# The channel id gives way on a narrow screen (clipped with an ellipsis), never a number: the rank
# and the load are as wide as their widest value (a 9999/9999 load), the scores are 0..1.
COLUMNS = (Col("rank", "#", least=2), Col("channel", "channel", 16, right=False, least=8, clip=True),
           Col("score", "score", 5), Col("cost", "cost", 5), Col("latency", "time", 5), Col("quality", "qual", 5),
           Col("capacity", "cap", 5), Col("load", "load", least=7))  # fmt: skip
CRITERIA = ("cost", "latency", "quality", "capacity")
WEIGHTS = ("cost", "time", "quality", "capacity")
SHORT = ("cost", "time", "qual", "cap")
LOAD_WARN = 0.8


class ChannelsPanel(Vertical):
    def __init__(self) -> None:
        super().__init__(id="channels-panel", classes="panel")
        self.border_title = "channels"
        self.view: ChannelsView | None = None
        self.redis: SourceHealth | None = None  # says why the ranking is empty
        self.filter = ""
        self.weights_shown = Text()

    def compose(self) -> ComposeResult:
        table = Table(id="channels", cursor_type="row", show_row_labels=False)
        add_columns(table, COLUMNS)
        yield table
        yield Input(placeholder="channel id contains…", id="channel-filter", compact=True)
        yield Static(id="weights")

    def show(self, view: ChannelsView, redis: SourceHealth | None = None) -> None:
        self.view = view
        self.redis = redis
        self._draw()

    def set_filter(self, text: str) -> None:
        self.filter = text.strip().lower()
        self._draw()

    def _draw(self) -> None:
        if self.view is None:
            return
        table = self.query_one("#channels", Table)
        shown = [c for c in self.view.ranking if self.filter in c.channel_id.lower()]
        keys = [c.channel_id for c in shown]
        tones = Tones(table)
        if keys != [row.value for row in table.rows]:  # the order changed: rebuild, keep the cursor's channel
            selected = _key_at(table)
            table.clear()
            for channel in shown:
                table.add_row(*_cells(channel, tones), key=channel.channel_id)
            if selected in keys:
                table.move_cursor(row=keys.index(selected), animate=False)
        else:
            for channel in shown:
                table.put(
                    channel.channel_id,
                    {col.key: v for col, v in zip(COLUMNS, _cells(channel, tones), strict=True)},
                )
        fit(table, COLUMNS)
        total = len(self.view.ranking)
        if self.filter:
            subtitle = f"/{self.filter} · {len(shown)} of {total}"
        else:  # an empty ranking with Redis up: nothing has published one (the optimizer does)
            subtitle = "" if total or self.redis is None or self.redis.state != UP else "nothing ranked yet"
        titled(self, f"channels · {total} ranked" if total else "channels", subtitle)
        line = self.query_one("#weights", Static)
        if not self.view.ranking and self.redis is not None and self.redis.state != UP:
            text = Text(f"no ranking: redis is {self.redis.state}", tones.warn)
        else:
            text = Text(weights_line(self.view.weights, line.size.width))
        if text != self.weights_shown:
            self.weights_shown = text
            line.update(text, layout=False)


def _key_at(table: DataTable[Text]) -> str | None:
    if not table.row_count:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def _cells(channel: RankedChannel, tones: Tones) -> list[Text]:
    load, capacity = channel.load, channel.capacity
    full = load / capacity if load is not None and capacity else 0.0
    load_style = tones.breach if full >= 1 else tones.warn if full >= LOAD_WARN else None
    scores = [cell(format.num(channel.criteria.get(name))) for name in CRITERIA]
    return [
        cell(str(channel.rank), tones.dim),  # no gap before it: the first column
        clipped(channel.channel_id),
        cell(format.num(channel.score), "bold"),
        *scores,
        cell(f" {format.count(load)}/{format.count(capacity)}", load_style),  # the space: a gap before 542/4000
    ]


def weights_line(weights: dict[str, float] | None, width: int = 0) -> str:
    """'weights  cost 0.40 · time 0.30 · quality 0.20 · capacity 0.10', shorter where that is too wide."""
    if weights is None:
        return f"weights  {format.NONE}"
    long = "weights  " + " · ".join(f"{name} {weights.get(name, 0.0):.2f}" for name in WEIGHTS)
    if len(long) <= width - 2 or not width:
        return long
    pairs = zip(WEIGHTS, SHORT, strict=True)
    return "weights " + " ".join(f"{short} {weights.get(name, 0.0):.2f}" for name, short in pairs)
