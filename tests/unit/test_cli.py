"""The CLI's public contract: help, JSON on stdout only, exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from commands.main import app

runner = CliRunner()


def test_help_lists_the_command_groups() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("stack", "migrate", "seed", "config", "up"):
        assert name in result.stdout


def test_config_json_is_pure_json_with_masked_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_DATABASE_URL", "postgresql://app:hunter2@db:5432/uoom")
    result = runner.invoke(app, ["config", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["urls"]["postgres"] == "postgresql://app:********@db:5432/uoom"
    assert "hunter2" not in result.stdout + result.stderr


def test_unknown_option_is_exit_code_2() -> None:
    result = runner.invoke(app, ["stack", "up", "--no-such-flag"])
    assert result.exit_code == 2


def test_bad_migration_name_is_a_one_line_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr("uoom.migrate.MIGRATIONS_DIR", tmp_path)
    result = runner.invoke(app, ["migrate", "new", "!!!"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: '!!!' gives an empty file name; use letters or digits"


def test_bad_setting_is_named_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_CACHE_TTL_HOURS", "zero")
    result = runner.invoke(app, ["config", "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: bad setting UOOM_ORDER_CACHE_TTL_HOURS: Input should be")
    assert len(result.stderr.strip().splitlines()) == 1
