"""`d`: the open dead letters. Space selects, `r` replays the selection (or the row under the
cursor) after a confirmation, through `uoom.services.dead_letters.replay_dead_letters` with
`PostgresDeadLetters`: the same code as `uoom dlq replay`, audited the same way. The outcome
stays in `#dlq-report`."""

from __future__ import annotations

import uuid
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui.connections import postgres, reason
from tui.screens.confirm import ConfirmScreen
from tui.widgets.tables import Col, Tones, fit

REPLAY_RATE = 100.0  # events a second: `uoom dlq replay`'s default --rate
LISTED = 1000  # the latest deaths looked at
# On a narrow screen the event type, then the last error, give way (clipped with an ellipsis), never a number.
COLUMNS = (Col("mark", " "), Col("id", "event"), Col("order", "order"), Col("type", "type", least=8, clip=True),
           Col("attempts", "tries"), Col("died", "died (UTC)"), Col("replays", "replays"),
           Col("error", "last error", least=8, clip=True))  # fmt: skip
MARK = "●"
NUMBERS = ("attempts", "replays")


class DeadLettersScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("space", "select", "select"),
        Binding("a", "select_all", "all/none"),
        Binding("r", "replay", "replay"),
        Binding("ctrl+r", "reload", "reload"),
    ]

    def __init__(self, settings: Any) -> None:
        super().__init__()
        self.settings = settings
        self.selected: set[str] = set()

    def compose(self) -> ComposeResult:
        with Vertical(id="dlq-panel", classes="panel") as box:
            box.border_title = "dead letters"
            table: DataTable[Text] = DataTable(id="dead-letters", cursor_type="row", show_row_labels=False)
            for col in COLUMNS:
                table.add_column(Text(col.label, justify="right" if col.key in NUMBERS else "left"), key=col.key)
            yield table
        yield Static("", id="dlq-report", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#dlq-report", Static).border_title = "replay"
        self.query_one("#dlq-report", Static).update(
            "[dim]space selects a dead letter, r replays the selection (or the row under the cursor)[/]"
        )
        self.query_one("#dead-letters", DataTable).focus()
        self.action_reload()

    @work(exclusive=True, group="dlq-load")
    async def action_reload(self) -> None:
        from uoom.stores import outbox

        try:
            async with postgres(self.settings) as conn:
                found = await outbox.dead_letters(conn, outbox.DeadLetterFilter(), newest_first=True, limit=LISTED)
        except Exception as exc:  # noqa: BLE001 - shown, not raised: PostgreSQL may be the thing that is down
            self._report(Text(f"cannot read the dead letters: {reason(exc)}", Tones(self).breach))
            return
        self._fill([d for d in found if d.state == "dead"])

    def _fill(self, dead: list[Any]) -> None:
        table: DataTable[Text] = self.query_one("#dead-letters", DataTable)
        table.clear()
        keys = {str(d.id) for d in dead}
        self.selected &= keys
        for d in dead:
            key = str(d.id)
            table.add_row(
                Text(MARK if key in self.selected else " ", "bold"),
                Text(key[:8]),
                Text(str(d.aggregate_id)[:8]),
                Text(d.event_type, no_wrap=True, overflow="ellipsis"),
                Text(str(d.attempts), justify="right"),
                Text(d.failed_at.strftime("%m-%d %H:%M:%S")),
                Text(str(d.replay_count), justify="right"),
                Text(_first_line(d.last_error), "dim", no_wrap=True, overflow="ellipsis"),
                key=key,
            )
        fit(table, COLUMNS)
        self._title()

    def on_resize(self) -> None:
        fit(self.query_one("#dead-letters", DataTable), COLUMNS)

    def _title(self) -> None:
        table = self.query_one("#dead-letters", DataTable)
        chosen = f" · {len(self.selected)} selected" if self.selected else ""
        self.query_one("#dlq-panel").border_title = f"dead letters · {table.row_count} open{chosen}"

    def _cursor_key(self) -> str | None:
        table: DataTable[Text] = self.query_one("#dead-letters", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_select(self) -> None:
        key = self._cursor_key()
        if key is not None:
            self._mark([key], key not in self.selected)
            self.query_one("#dead-letters", DataTable).action_cursor_down()

    def action_select_all(self) -> None:
        table: DataTable[Text] = self.query_one("#dead-letters", DataTable)
        keys = [str(row.value) for row in table.rows]
        self._mark(keys, len(self.selected) < len(keys))

    def _mark(self, keys: list[str], on: bool) -> None:
        table: DataTable[Text] = self.query_one("#dead-letters", DataTable)
        for key in keys:
            (self.selected.add if on else self.selected.discard)(key)
            table.update_cell(key, "mark", Text(MARK if on else " ", "bold"))
        self._title()

    @work(exclusive=True, group="dlq-replay")
    async def action_replay(self) -> None:
        from uoom.services.dead_letters import WOULD_REPLAY, Selection, replay_dead_letters
        from uoom.stores.audit import Actor
        from uoom.stores.dead_letters import PostgresDeadLetters

        chosen = sorted(self.selected) or [k for k in [self._cursor_key()] if k]
        if not chosen:
            self._report(Text("nothing to replay: no dead letter is open", "dim"))
            return
        selection, actor = Selection(ids=tuple(uuid.UUID(k) for k in chosen)), Actor.here()
        try:
            async with postgres(self.settings) as conn:
                preview = await replay_dead_letters(PostgresDeadLetters(conn), selection, actor, dry_run=True)
            moving = preview.count(WOULD_REPLAY)
            if not moving:
                self._report(outcome(preview, Tones(self)))
                return
            question = (
                f"Replay {moving} dead letter{'s' * (moving != 1)}?\n\n"
                f"{'They go' if moving != 1 else 'It goes'} back to Kafka with the same event id, "
                f"at most {REPLAY_RATE:g} a second, audited as {actor.user}@{actor.host}."
            )
            if not await self.app.push_screen_wait(ConfirmScreen("replay dead letters", question)):
                self._report(Text("not replayed: nothing changed", "dim"))
                return
            async with postgres(self.settings) as conn:
                report = await replay_dead_letters(PostgresDeadLetters(conn), selection, actor, rate=REPLAY_RATE)
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            self._report(Text(f"replay failed: {reason(exc)}", Tones(self).breach))
            return
        self.selected.clear()
        self._report(outcome(report, Tones(self)))
        self.action_reload()

    def _report(self, text: Text) -> None:
        self.query_one("#dlq-report", Static).update(text)


def outcome(report: Any, tones: Tones) -> Text:
    """'replayed 2, skipped 0, failed 0 in 0.1 s (audit #12)', then each event that did not move."""
    from uoom.services.dead_letters import FAILED, REPLAYED, SKIPPED, WOULD_REPLAY

    counts = {name: report.count(name) for name in (REPLAYED, SKIPPED, FAILED)}
    text = Text()
    if report.dry_run:
        text.append(f"nothing to replay: {report.count(WOULD_REPLAY)} would move", "bold")
    else:
        audit = f" (audit #{report.audit_id})" if report.audit_id is not None else ""
        style = tones.breach if counts[FAILED] else tones.good
        text.append(
            f"replayed {counts[REPLAYED]}, skipped {counts[SKIPPED]}, failed {counts[FAILED]} "
            f"in {report.seconds:.1f} s{audit}",
            style,
        )
    for step in report.steps:
        if step.outcome in (SKIPPED, FAILED):
            text.append(f"\n{step.outcome:>8}  {str(step.id)[:8]}  {step.reason or ''}", tones.dim)
    return text


def _first_line(text: str | None) -> str:
    line = (text or "").splitlines()[0] if text else ""
    return line if len(line) <= 80 else line[:79] + "…"
