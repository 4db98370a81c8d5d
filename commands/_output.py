"""Output conventions: JSON alone on stdout, people-facing text on stderr, known errors in one line."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar

import orjson
import typer
from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout (for scripts).")


class ExitCode(IntEnum):
    OK = 0
    PROBLEM = 1  # a problem was found or an operation failed
    USAGE = 2


def emit_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = ExitCode.PROBLEM) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    return typer.Exit(code)


def command(fn: F) -> F:
    """Run sync or async command bodies; turn known failures into one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            return result
        except typer.Exit:
            raise
        except Exception as exc:
            if os.environ.get("UOOM_DEBUG") == "1":
                raise
            raise fail(*_describe(exc)) from None

    return wrapper  # type: ignore[return-value]


def _describe(exc: Exception) -> tuple[str, int]:
    from pydantic import ValidationError

    from uoom.errors import UoomError

    if isinstance(exc, UoomError):
        return str(exc), exc.exit_code
    if isinstance(exc, ValidationError):  # a bad setting in the environment or .env
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return f"bad setting {problems}", ExitCode.USAGE
    if isinstance(exc, (ConnectionError, OSError, TimeoutError)):
        return (
            f"cannot reach a service ({type(exc).__name__}: {exc}); is the stack up? try `uoom stack status`",
            ExitCode.PROBLEM,
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first} (UOOM_DEBUG=1 shows the traceback)", ExitCode.PROBLEM
