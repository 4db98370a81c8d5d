"""`uoom --help` starts fast: it imports typer and the command modules, none of the heavy
libraries (harlequin's import-hygiene test). Each command imports what it needs when it runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = {"ortools", "fastapi", "starlette", "uvicorn", "botocore", "aioboto3", "aiobotocore", "aiokafka",
         "textual", "asyncpg", "redis", "amazondax", "numpy", "plotext"}  # fmt: skip


def imported_top_level(*args: str, env: dict[str, str] | None = None, returncode: int = 0) -> set[str]:
    """The top-level packages a fresh `python -X importtime -m commands ARGS` imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "commands", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == returncode, result.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


ROOT_HELP_SKIPS = HEAVY | {"pydantic", "pydantic_settings", "orjson", "rich", "asyncio"}


@pytest.mark.parametrize("flag", ["--help", "-h", "--version"])
def test_root_help_imports_typer_and_the_command_modules_only(flag: str) -> None:
    assert imported_top_level(flag) & ROOT_HELP_SKIPS == set()


@pytest.mark.parametrize("args", [["channels", "--help"], ["stack", "-h"], ["channels", "list", "-h"], ["up", "-h"]])
def test_command_help_imports_no_heavy_library(args: list[str]) -> None:
    assert imported_top_level(*args) & HEAVY == set()


def test_channels_list_loads_neither_the_solver_nor_the_web_stack() -> None:
    # a real run (the database is unreachable: exit 1 after the imports and the connection attempt)
    names = imported_top_level(
        "channels", "list", env={"UOOM_DATABASE_URL": "postgresql://u@127.0.0.1:9/x"}, returncode=1
    )
    assert "asyncpg" in names  # the probe works: the command did run
    assert names & {"ortools", "fastapi", "starlette", "uvicorn", "aiokafka", "botocore", "textual"} == set()
