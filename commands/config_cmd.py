"""`uoom config`: the effective settings, secrets masked."""

from __future__ import annotations

from commands._context import current
from commands._output import JSON_OPTION, command, emit_json, render


@command
def show_config(as_json: bool = JSON_OPTION) -> None:
    """Print the effective settings and service URLs, secrets masked.

    From the environment, `.env` and the defaults.
    One `setting value` row per line on stdout, so `uoom config | grep redis` works; `--json`
    prints the settings and every service URL (null: not configured).
    """
    values = current().settings.masked()
    if as_json:
        emit_json(values)
        return
    urls: dict[str, str | None] = values.pop("urls")  # type: ignore[assignment]
    rows = [{"setting": name, "value": "(empty)" if value == "" else value} for name, value in values.items()]
    rows += [{"setting": f"url.{name}", "value": url or "not configured"} for name, url in urls.items()]
    render(rows, ("setting", "value"), as_json=False, title="uoom configuration")
