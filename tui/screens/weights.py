"""`w`: the channel weights, validated as they are typed and saved through
`uoom.rankings.apply_weights`, the same code as `uoom channels weights set`. Bad input is shown
here and nothing is written."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui.connections import reason, redis, stores
from uoom.domain.channels import CRITERIA, Weights


class WeightsScreen(ModalScreen[Weights | None]):
    """Dismissed with the weights stored, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, settings: Any, current: dict[str, float] | None) -> None:
        super().__init__()
        self.settings = settings
        self.current = current or {}

    def compose(self) -> ComposeResult:
        with Vertical(id="weights-dialog", classes="dialog") as box:
            box.border_title = "channel weights"
            box.border_subtitle = "normalised to sum 1"
            for name in CRITERIA:
                with Horizontal(classes="field"):
                    yield Label(name, classes="field-label")
                    value = self.current.get(name)
                    yield Input(value="" if value is None else f"{value:.4g}", id=f"weight-{name}", compact=True)
            yield Static("", id="weights-preview")
            yield Static("", id="weights-error")
            with Horizontal(classes="buttons"):
                yield Button("save", id="weights-save", variant="primary", compact=True)
                yield Button("cancel", id="weights-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(f"#weight-{CRITERIA[0]}", Input).focus()
        if not self.current:  # no snapshot has shown them yet: read them
            self._load()
        self._check()

    @work(exclusive=True, group="weights")
    async def _load(self) -> None:
        from uoom.rankings import get_weights

        try:
            async with redis(self.settings) as client:
                stored = await get_weights(client)
        except Exception as exc:  # noqa: BLE001 - typed weights can still be saved once Redis answers
            self.query_one("#weights-error", Static).update(f"cannot read the weights: {reason(exc)}")
            return
        for name in CRITERIA:
            field = self.query_one(f"#weight-{name}", Input)
            if not field.value:
                field.value = f"{getattr(stored, name):.4g}"

    def raw(self) -> dict[str, str]:
        """What was typed; an empty field is a weight of 0, as a criterion left out of the command."""
        values = {name: self.query_one(f"#weight-{name}", Input).value.strip() for name in CRITERIA}
        return {name: value for name, value in values.items() if value}

    def _parsed(self) -> Weights | str:
        """The weights typed, normalised, or why they are refused (the domain's own rules)."""
        try:
            return Weights.from_mapping(self.raw())
        except ValueError as exc:
            return str(exc)

    @on(Input.Changed)
    def _check(self) -> None:
        """As it is typed: what would be stored, or what is wrong (amber until a save is refused)."""
        self.query_one("#weights-error", Static).update("")
        preview = self.query_one("#weights-preview", Static)
        weights = self._parsed()
        if isinstance(weights, str):
            preview.set_class(True, "-invalid").update(weights)
        else:
            shown = "  ".join(f"{name} {getattr(weights, name):.2f}" for name in CRITERIA)
            preview.set_class(False, "-invalid").update(f"→ {shown}")

    @on(Input.Submitted)
    @on(Button.Pressed, "#weights-save")
    def _save(self) -> None:
        weights = self._parsed()
        if isinstance(weights, str):  # refused before anything is connected to: nothing written
            self._refused(weights)
            return
        self.query_one("#weights-save", Button).disabled = True
        self._store(self.raw())

    def _refused(self, why: str) -> None:
        self.query_one("#weights-preview", Static).update("")  # the error says it: once
        self.query_one("#weights-error", Static).update(f"not saved: {why}")

    @on(Button.Pressed, "#weights-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="weights")
    async def _store(self, raw: dict[str, str]) -> None:
        from uoom.rankings import apply_weights

        try:
            async with stores(self.settings) as (conn, client):
                weights = await apply_weights(conn, client, raw)
        except Exception as exc:  # noqa: BLE001 - refused (ValueError) or a store that does not answer: said here
            self._refused(str(exc) if isinstance(exc, ValueError) else reason(exc))
            self.query_one("#weights-save", Button).disabled = False
        else:
            self.dismiss(weights)
