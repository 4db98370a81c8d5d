"""The panels' tables: a DataTable with keyed rows and columns that is written cell by cell, and
the colours that carry a meaning (amber: near a limit, red: over it), taken from the theme."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets._data_table import CellCacheKey, SegmentLines
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey

from tui.model import BREACH, DEGRADED, DOWN, UP, WARN, level
from tui.widgets import format

TREND = "trend"


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    width: int | None = None  # None: as wide as its content, at least `least`; a `clip` column's: when room allows
    right: bool = True
    least: int = 0
    clip: bool = False  # a text column (an id) that gives way, down to `least`, when the table is short of room


class Tones:
    """Rich styles for cell text, from the running app's theme (a cell is not styled by CSS)."""

    def __init__(self, widget: Widget) -> None:
        theme = widget.app.current_theme
        self.warn = Style(color=theme.warning)
        self.breach = Style(color=theme.error, bold=True)
        self.good = Style(color=theme.success)
        self.calm = Style(color=theme.primary)
        self.dim = Style(dim=True)

    def of(self, level_name: str) -> Style | None:
        return {WARN: self.warn, BREACH: self.breach}.get(level_name)

    def of_state(self, state: str) -> Style | None:
        return {UP: self.good, DEGRADED: self.warn, DOWN: self.breach}.get(state, self.dim)


def add_columns(table: DataTable, columns: Sequence[Col]) -> None:
    """No cell padding: each width holds its gap, so a small terminal loses no column to spaces. A
    label padded to `least` is an auto width's floor (not a `clip` column's: see `fit`)."""
    table.cell_padding = 0
    for col in columns:
        label = col.label.rjust(col.least) if col.right else f" {col.label}".ljust(0 if col.clip else col.least)
        table.add_column(Text(label, justify="right" if col.right else "left"), key=col.key, width=col.width)


def fit(table: DataTable[Text], columns: Sequence[Col]) -> None:
    """Widths that show every number whole: each column as wide as its widest cell (or its fixed
    width), and the `clip` columns take what is left: each its `least`, then, in their order, up
    to its widest cell (or its `width`, if more); a text longer than its column is cut with an ellipsis (`clipped`)."""
    padding = 2 * table.cell_padding
    widths: dict[str, int] = {}
    for col in columns:
        if not col.clip:
            widths[col.key] = col.width or _widest(table, col)
    clips = [col for col in columns if col.clip]
    room = table.scrollable_content_region.width - sum(widths.values()) - padding * len(columns)
    room -= sum(col.least for col in clips)  # each its least first, then the rest in their order
    for col in clips:
        widths[col.key] = col.least + max(min(room, max(_widest(table, col), col.width or 0) - col.least), 0)
        room -= widths[col.key] - col.least
    changed = False
    for col in columns:
        column = table.columns[ColumnKey(col.key)]
        if column.width != widths[col.key] or column.auto_width:
            column.width, column.auto_width, changed = widths[col.key], False, True
    if changed:
        table._require_update_dimensions = True
        table._update_count += 1  # every cached render had the old widths
        table.refresh()


def _widest(table: DataTable[Text], col: Col) -> int:
    key = ColumnKey(col.key)
    cells = (row.get(key) for row in table._data.values())
    label = table.columns[key].label.cell_len
    return max([label, *(value.cell_len for value in cells if isinstance(value, Text))])


def clipped(text: str, style: Style | str | None = None) -> Text:
    """A left-aligned text (an id) after a one-space gap, cut with an ellipsis where its column is narrower."""
    return Text(f" {text}", style=style or "", justify="left", no_wrap=True, overflow="ellipsis")


class Table(DataTable[Text]):
    """A DataTable that costs little to keep up to date at a refresh a second.

    - When one cell changes, only that cell is drawn again and only its row is repainted:
      DataTable's `update_cell` bumps a counter that every rendered cell, row and line is cached
      under and repaints the whole widget, so one new number would re-render the whole table.
    - A one-line text cell is drawn straight into segments, not through Rich's general
      (wrapping, padding) render path, which costs several times more for the same segments."""

    def update_cell(
        self, row_key: RowKey | str, column_key: ColumnKey | str, value: Text, *, update_width: bool = False
    ) -> None:
        row = row_key if isinstance(row_key, RowKey) else RowKey(row_key)
        column = column_key if isinstance(column_key, ColumnKey) else ColumnKey(column_key)
        if update_width or row not in self._row_locations or column not in self._column_locations:
            super().update_cell(row, column, value, update_width=update_width)  # or its CellDoesNotExist
            return
        self._set(row, column, value)
        self.refresh_row(self.get_row_index(row))

    def _set(self, row: RowKey, column: ColumnKey, value: Text) -> None:
        """Write a cell and forget the renders, without a repaint (the caller repaints its row):
        the other rows keep their painted lines, and a cell is quick to draw again."""
        self._data[row][column] = value
        self._cell_render_cache.clear()
        self._row_render_cache.clear()
        self._row_renderable_cache.clear()
        self._line_cache.clear()

    def put(self, row: str, values: Mapping[str, Text]) -> None:
        """Write the cells of a row that changed, then repaint that row once: an unchanged cell
        costs no refresh."""
        key = RowKey(row)
        if key not in self._row_locations:
            raise CellDoesNotExist(f"No row with key={row!r}.")
        changed = False
        for column, value in values.items():
            if self.get_cell(row, column) != value:
                self._set(key, ColumnKey(column), value)
                changed = True
        if changed:
            self.refresh_row(self.get_row_index(key))

    _line_style: Style | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        self._line_style = self.rich_style  # once a paint, not once a line: it walks up the DOM
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        """DataTable's own for a table without fixed rows, with the style taken once a paint."""
        if self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, self._line_style or self.rich_style)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        """DataTable's own, but a one-line Text cell without cell padding is drawn by `one_line`."""
        if row_index == -1 or column_index == -1 or self.cell_padding or row_index < self.fixed_rows:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None or self.rows[row_key].height != 1:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key: CellCacheKey = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        lines = self._cell_render_cache.get(cache_key)
        if lines is None:
            value = self._get_row_renderables(row_index).cells[column_index]
            if not isinstance(value, Text) or (value.justify or "default") not in ("default", "left", "right"):
                return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            component_style, post_style = self._get_styles_to_render_cell(
                False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
                self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
            )  # fmt: skip
            pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
            lines = [one_line(self.app.console, value, width, pre_style, post_style)]
            self._cell_render_cache[cache_key] = lines
        return lines


def one_line(console: Console, text: Text, width: int, pre_style: Style, post_style: Style) -> list[Segment]:
    """The segments Rich makes of a no-wrap `text` in a cell `width` columns wide (cropped, then
    justified left, right or not at all), under `pre_style` and over `post_style`."""
    base = console.get_style(text.style) if text.style else Style.null()
    justify = text.justify or "default"
    if justify == "right":
        text = text.copy()
        text.rstrip()
    if text.cell_len > width:
        text = text.copy()
        text.truncate(width, overflow=text.overflow or "fold")
    pad = width - text.cell_len
    if text.spans:
        body = [Segment(seg.text, pre_style + seg.style + post_style) for seg in text.render(console) if seg.text]
    else:
        body = [Segment(text.plain, pre_style + base + post_style)] if text.plain else []
    if not pad:
        return body
    if justify == "right":
        return [Segment(" " * pad, pre_style + base + post_style), *body]
    fill = pre_style + base + post_style if justify == "left" else pre_style + post_style
    return [*body, Segment(" " * pad, fill)]


class Board(Table):
    """A read-only table: fixed columns, rows by key, cells as right-aligned Text."""

    COLUMNS: Sequence[Col] = ()

    def __init__(self, *, id: str, rows: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(id=id, cursor_type="none", show_row_labels=False, zebra_stripes=False)
        self.can_focus = False
        self._rows = list(rows)

    def on_mount(self) -> None:
        add_columns(self, self.COLUMNS)
        for key, label in self._rows:
            self.add_row(*self.blank_row(label), key=key)

    def render_line(self, y: int) -> Strip:
        """A data row drawn straight from its cells: a board has no cursor, hover, row labels or
        fixed rows, so DataTable's general row machinery (and its caches) buys nothing here."""
        header = 1 if self.show_header else 0
        scroll_x, scroll_y = self.scroll_offset
        if y < header or scroll_x or self.fixed_columns:
            return super().render_line(y)
        style = self._line_style or self.rich_style
        width = self.size.width
        row_index = y - header + scroll_y
        row_key = self._row_locations.get_key(row_index)
        if row_key is None:
            return Strip.blank(width, style)
        cells = self._data[row_key]
        console, null, meta = self.app.console, Style.null(), Style.from_meta
        segments: list[Segment] = []
        used = 0
        for index, column in enumerate(self.ordered_columns):  # the same segments and mouse meta as DataTable's
            value = cells.get(column.key)
            text = value if isinstance(value, Text) else Text(str(value or ""), no_wrap=True)
            cell_width = column.get_render_width(self)
            used += cell_width
            pre = style + meta({"row": row_index, "column": index})
            segments += one_line(console, text, cell_width, pre, null)
        out = meta({"row": row_index, "column": 0, "out_of_bounds": True})
        segments.append(Segment(" " * max(0, width - used), Style.from_color(style.color, style.bgcolor) + out))
        return Strip(segments).crop(0, width).adjust_cell_length(width, style).simplify()

    def blank_row(self, label: str) -> list[Text]:
        return [cell(label, "bold", right=False) if i == 0 else cell(format.NONE) for i in range(len(self.COLUMNS))]

    def fill_width(self, most: int = 0) -> int:
        """The last column takes what the others leave of the panel's width (a trend's bars, or the
        values, aligned on the right edge), at `most` columns if given; its width, less the
        one-space gap before it."""
        *others, last = self.columns.values()
        width = max(self.scrollable_content_region.width - sum(c.get_render_width(self) for c in others), 5)
        width = min(width, most) if most else width
        if last.width != width or last.auto_width:
            last.width, last.auto_width = width, False
            self._require_update_dimensions = True
            self._update_count += 1  # every cached render had the old width
            self.refresh()
        return width - 1


def titled(widget: Widget, title: str, subtitle: str | None = None) -> None:
    """Set a border title (and subtitle) only when it changes: setting one repaints the whole
    widget, every child's area included, even to the same text."""
    if widget.border_title != title:
        widget.border_title = title
    if subtitle is not None and widget.border_subtitle != subtitle:
        widget.border_subtitle = subtitle


def cell(text: str, style: Style | str | None = None, right: bool = True) -> Text:
    """A right-aligned number, or a left-aligned name after a one-space gap."""
    return Text(text if right else f" {text}", style=style or "", justify="right" if right else "left", no_wrap=True)


def trend(slots: Sequence[float | None], tones: Tones, slo_ms: float | None = None, height: int = 1) -> Text:
    """A sparkline of `slots` (`Trends.slots`: one column each, latest on the right, None: no
    reading then) after a one-space gap, `height` rows tall; with an SLO, each column amber or
    red by the level of what it summarises. The same slots give the same (shared) Text: most
    refreshes change no slot but the current one's, and often not even that."""
    return _trend(tuple(slots), tones.calm, tones.warn, tones.breach, slo_ms, height)


@functools.lru_cache(maxsize=256)
def _trend(
    slots: tuple[float | None, ...], calm: Style, warn: Style, breach: Style, slo_ms: float | None, height: int
) -> Text:
    tone = {WARN: warn, BREACH: breach}
    styles = [tone.get(level(value, slo_ms), calm) if slo_ms else calm for value in slots]
    text = Text(no_wrap=True)
    for i, row in enumerate(format.columns(slots, height) if height > 1 else [format.bars(slots)]):
        text.append("\n " if i else " ")
        start = 0
        for end in range(1, len(row) + 1):  # one span per run of a colour: cheaper to draw than one per bar
            if end == len(row) or styles[end] != styles[start]:
                text.append(row[start:end], styles[start])
                start = end
    return text
