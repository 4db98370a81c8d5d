"""`uoom config`: the effective settings, secrets masked."""

from __future__ import annotations

from commands._output import JSON_OPTION, command, emit_json, err


@command
def show_config(as_json: bool = JSON_OPTION) -> None:
    """Print the effective configuration (environment, .env, defaults) with secrets masked."""
    from rich.table import Table

    from uoom.config import Settings

    values = Settings().masked()
    if as_json:
        emit_json(values)
        return
    table = Table("setting", "value", title="uoom configuration")
    urls = values.pop("urls")
    for name, value in values.items():
        table.add_row(name, str(value))
    for name, url in urls.items():  # type: ignore[attr-defined]
        table.add_row(f"url.{name}", url)
    err.print(table)
