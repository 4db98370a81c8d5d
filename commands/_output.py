"""Output conventions (kubectl, the `hf` CLI): results on stdout, as a table for people or as JSON
with `--json`; progress, hints, warnings and errors on stderr; a known failure is one line.

rich, orjson and asyncio are imported on first use, so `uoom --help` does not pay for them.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])

JSON_OPTION = typer.Option(False, "--json", help="Print JSON (camelCase keys) on stdout instead of a table.")


class ExitCode(IntEnum):
    """Exit codes are public API: scripts branch on them."""

    OK = 0
    PROBLEM = 1  # a problem was found or an operation failed
    USAGE = 2  # bad input: an unknown option, a bad value, a bad setting
    INTERRUPTED = 130  # Ctrl-C, as shells report it (128 + SIGINT)


EXIT_CODES = "Exit codes: 0 ok, 1 a problem found or an operation failed, 2 a usage error, 130 interrupted."


def group(description: str) -> typer.Typer:
    """A command group (`uoom stack`, ...) with the app's conventions: help when called bare, plain
    help text (rich's help formatter costs ~150 ms of start-up, half of `uoom --help`)."""
    return typer.Typer(help=description, no_args_is_help=True, rich_markup_mode=None)


class _Stderr:
    """The stderr console, created on first use (importing rich costs ~40 ms)."""

    @functools.cached_property
    def console(self) -> Console:
        from rich.console import Console

        # no markup: messages carry URLs, SQL and exception text, where "[...]" is not a style
        return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self.console.print(*objects, **kwargs)

    @contextmanager
    def status(self, message: str) -> Iterator[Callable[[str], None]]:
        """A spinner saying what is being done, on a terminal (nothing otherwise: logs and scripts
        get the outcome). Yields `update(message)` for the next step."""
        if not self.console.is_terminal:
            yield lambda step: None
            return
        with self.console.status(message) as spinner:
            yield lambda step: spinner.update(step)


err = _Stderr()


_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def camel(value: Any) -> Any:
    """One casing for every `--json` output: snake_case keys become camelCase, recursively."""
    if isinstance(value, Mapping):
        return {_camel_key(k): camel(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [camel(v) for v in value]
    return value


def _camel_key(key: Any) -> Any:
    if not isinstance(key, str) or not _SNAKE.match(key):
        return key
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def emit_json(value: Any) -> None:
    """The --json document on stdout; with `uoom --get PATH` only the values at those paths."""
    import orjson

    from commands._context import current

    document = camel(value)
    if current().get:
        sys.stdout.write("".join(_bare(pick(document, path)) + "\n" for path in current().get))
    else:
        sys.stdout.write(orjson.dumps(document, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def pick(value: Any, path: str) -> Any:
    """The value at a dotted `path` (jq's `.a.b`; in a list an index, `#` for the count, or
    `field=value` for the first element with that field), None when absent. Keys may hold dots
    themselves (`create.assign`, `gcPause.gen0`): the longest key that matches wins."""
    parts = path.split(".") if path else []
    at = 0
    while at < len(parts):
        if isinstance(value, Mapping):
            if parts[at] == "#":
                value, at = len(value), at + 1
                continue
            key = next((".".join(parts[at:end]) for end in range(len(parts), at, -1)
                        if ".".join(parts[at:end]) in value), None)  # fmt: skip
            if key is None:
                return None
            value, at = value[key], at + len(key.split("."))
        elif isinstance(value, list):
            part = parts[at]
            if part == "#":
                value = len(value)
            elif part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
                value = value[int(part)]
            elif "=" in part:  # the first element whose field has this value: checks.name=kafka
                field, _, wanted = part.partition("=")
                value = next((e for e in value if isinstance(e, Mapping) and _bare(e.get(field)) == wanted), None)
            else:
                return None
            at += 1
        else:
            return None
    return value


def _bare(value: Any) -> str:
    """jq -r: a string as it is, anything else as JSON (null, true, 1.5, {...})."""
    import orjson

    if isinstance(value, str):
        return value
    text = orjson.dumps(value, default=str).decode()
    return str(orjson.loads(text)) if text.startswith('"') else text  # a time, an id: bare as well


def render(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    as_json: bool,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Rows to stdout: pure JSON with `--json`; else a table of `columns` (header: the column name
    with `_` as a space, unless `headers` names it), drawn by rich on a terminal and as plain
    aligned columns when piped (kubectl's way: `| grep`, `| awk` see one row per line)."""
    rows = list(rows)
    if as_json:
        emit_json(rows)
        return
    names = [(headers or {}).get(c, c.replace("_", " ")) for c in columns]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if not sys.stdout.isatty():
        widths = [max(len(line[i]) for line in [names, *cells]) for i in range(len(names))]
        for line in [[n.upper() for n in names], *cells]:
            sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")
        sys.stdout.flush()
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*names, title=title)
    for line in cells:
        table.add_row(*line)
    Console(highlight=False).print(table)


def render_one(row: Mapping[str, Any], columns: Sequence[str], as_json: bool, **options: Any) -> None:
    """One object: the object itself with `--json`, else a table of one row."""
    if as_json:
        emit_json(row)
    else:
        render([row], columns, as_json=False, **options)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def fail(message: str, code: int = ExitCode.PROBLEM) -> typer.Exit:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    return typer.Exit(code)


def command(fn: F) -> F:
    """Run a sync or async command body; turn known failures into one line and an exit code
    (a traceback instead with UOOM_DEBUG=true)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            if inspect.iscoroutine(result):
                import asyncio

                result = asyncio.run(result)
            return result
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Exception as exc:
            from commands._context import current
            from commands._errors import describe

            if current().debug:
                raise
            raise fail(*describe(exc)) from None

    return wrapper  # type: ignore[return-value]
