"""Which DynamoDB server the local stack runs: UOOM_DYNAMODB_SERVER, and with `auto` dynoxide when
scripts/setup built it, moto otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from commands.main import app
from uoom.config import Settings
from uoom.errors import PrerequisiteMissing
from uoom.stack.dynamodb import DYNOXIDE_VERSION, DynamoDB, chosen_server, dynoxide_path, server_command


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A user home without dynoxide (its cache is where scripts/setup installs it)."""
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    return tmp_path


def install_dynoxide() -> None:
    dynoxide_path().parent.mkdir(parents=True)
    dynoxide_path().write_text("#!/bin/sh\n")


def settings(server: str = "auto") -> Settings:
    return Settings(_env_file=None, dynamodb_server=server)  # type: ignore[arg-type]


def test_auto_is_moto_until_dynoxide_is_built_then_dynoxide(home: Path) -> None:
    assert chosen_server(settings()) == "moto"
    install_dynoxide()
    assert dynoxide_path() == home / ".cache" / "uoom" / f"dynoxide-{DYNOXIDE_VERSION}" / "bin" / "dynoxide"
    assert chosen_server(settings()) == "dynoxide"
    assert chosen_server(settings("moto")) == "moto"  # forced


def test_the_stack_starts_the_chosen_server_in_memory_on_the_endpoint_port(home: Path) -> None:
    install_dynoxide()
    cfg = settings().model_copy(update={"dynamodb_endpoint": "http://127.0.0.1:18123"})
    command = DynamoDB(cfg).command()
    assert command == [str(dynoxide_path()), "serve", "--host", "127.0.0.1", "--port", "18123"]
    assert "--db-path" not in command and DynamoDB.in_memory  # what `stack down` says it loses
    assert server_command("moto", 18123)[1:] == ["-H", "127.0.0.1", "-p", "18123"]
    assert server_command("moto", 18123)[0].endswith("/moto_server")


def test_forcing_dynoxide_where_it_is_not_built_names_the_fix(home: Path) -> None:
    with pytest.raises(PrerequisiteMissing, match=r"run scripts/setup .*UOOM_DYNAMODB_SERVER=moto"):
        DynamoDB(settings("dynoxide")).check_prerequisites()


def test_a_bad_choice_names_the_setting_and_the_accepted_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_DYNAMODB_SERVER", "dynamodb-local")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: bad setting UOOM_DYNAMODB_SERVER: ")
    assert result.stderr.strip().endswith("accepted: one of auto, dynoxide, moto")
