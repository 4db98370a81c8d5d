"""The CLI's public contract: help, JSON on stdout only, exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
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
    # the variable that was set (the seed's name), what is wrong, and what is accepted
    assert result.stderr.startswith("error: bad setting ORDER_CACHE_TTL_HOURS: Input should be")
    assert result.stderr.rstrip().endswith("(got 'zero'); accepted: a whole number >= 1")
    assert len(result.stderr.strip().splitlines()) == 1


# --- conventions: -h, --version, completion, help everywhere -------------------------------------


def _commands() -> list[tuple[list[str], Any]]:
    """Every command and group of the app as (path, click command)."""
    root = typer.main.get_command(app)
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], cmd: Any) -> None:
        found.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk([*path, name], sub)

    walk([], root)
    return found


def test_dash_h_is_help_everywhere() -> None:
    for path, _ in _commands():
        result = runner.invoke(app, [*path, "-h"])
        assert result.exit_code == 0, (path, result.stderr)
        assert "Usage:" in result.stdout, path


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"uoom {version('uoom')}"


def test_shell_completion_is_offered() -> None:
    result = runner.invoke(app, ["--help"])
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_every_command_option_and_argument_has_help() -> None:
    missing = []
    for path, cmd in _commands():
        if not (cmd.help or cmd.short_help):
            missing.append(" ".join(["uoom", *path]))
        for param in cmd.params:
            if not getattr(param, "help", None):
                missing.append(f"{' '.join(['uoom', *path])} {param.name}")
    assert missing == []


def test_exit_codes_are_in_the_root_help() -> None:
    assert "Exit codes: 0 ok, 1 a problem found" in runner.invoke(app, ["--help"]).stdout


# --- output: results on stdout, the rest on stderr, one casing -----------------------------------


def test_config_table_is_on_stdout_one_setting_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_REDIS_URL", "redis://127.0.0.1:6390/3")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0
    assert result.stderr == ""
    redis_lines = [line.split() for line in result.stdout.splitlines() if "redis" in line]
    assert ["redis_url", "redis://127.0.0.1:6390/3"] in redis_lines
    assert ["url.redis", "redis://127.0.0.1:6390/3"] in redis_lines


def test_an_unset_dax_endpoint_says_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DAX_ENDPOINT", "UOOM_DAX_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    table = runner.invoke(app, ["config"]).stdout
    assert ["url.dax", "not", "configured"] in [line.split() for line in table.splitlines()]
    assert json.loads(runner.invoke(app, ["config", "--json"]).stdout)["urls"]["dax"] is None


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def test_json_keys_are_camel_case() -> None:
    data = json.loads(runner.invoke(app, ["config", "--json"]).stdout)
    assert "databaseUrl" in data and "outboxRetention" in data
    assert [k for k in _keys(data) if "_" in k] == []


def test_camel_leaves_values_and_non_snake_keys_alone() -> None:
    from commands._output import camel

    assert camel({"lag_seconds": 1, "rows": [{"last_published_at": "a_b"}], "id": "x_y", "partner-gamma": 1}) == {
        "lagSeconds": 1,
        "rows": [{"lastPublishedAt": "a_b"}],
        "id": "x_y",
        "partner-gamma": 1,
    }


# --- failures: named, before connecting, one line unless UOOM_DEBUG -------------------------------

NOWHERE_PG = "postgresql://uoom@127.0.0.1:9/uoom"  # port 9 (discard): nothing listens


def test_a_missing_database_server_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_DATABASE_URL", NOWHERE_PG)
    result = runner.invoke(app, ["channels", "list"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "error: PostgreSQL at postgresql://127.0.0.1:9/uoom is not answering (connection refused); "
        "start it with `uoom stack up`"
    )


def test_a_missing_redis_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_REDIS_URL", "redis://127.0.0.1:9/0")
    result = runner.invoke(app, ["channels", "weights", "get"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: Redis at redis://127.0.0.1:9/0 is not answering (connection refused); start it with `uoom stack up`"
    )


def test_a_remote_service_names_its_variable_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    from commands._errors import unavailable
    from uoom.config import Settings

    settings = Settings(_env_file=None, redis_url="redis://:pw@cache.internal:6379/0")  # type: ignore[arg-type]
    message = str(unavailable("redis", settings, ConnectionRefusedError()))
    assert message == (
        "Redis at redis://cache.internal:6379/0 is not answering (connection refused); "
        "check UOOM_REDIS_URL and that it is reachable"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["channels", "weights", "set", "speed=1"],
        ["channels", "add", "x", "--name", "X", "--kind", "boat", "--capacity", "1", "--base-cost", "1",
         "--cost-per-km", "1", "--speed-kmh", "1", "--pickup-latency-min", "1", "--radius-km", "1", "--quality", "1"],
        ["channels", "set", "x", "colour=red"],
        ["outbox", "prune", "--older-than", "soon"],
        ["up", "--only", "nosuch"],
        ["stack", "status", "nosuch"],
    ],
)  # fmt: skip
def test_input_is_validated_before_connecting_to_anything(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.setenv("UOOM_DATABASE_URL", NOWHERE_PG)
    monkeypatch.setenv("UOOM_REDIS_URL", "redis://127.0.0.1:9/0")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.stderr
    assert "not answering" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_setting_names_its_variable_and_the_accepted_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_DATABASE_POOL_SIZE", "lots")
    result = runner.invoke(app, ["channels", "list"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: bad setting UOOM_DATABASE_POOL_SIZE: Input should be a valid integer, unable to parse string as an "
        "integer (got 'lots'); accepted: a whole number >= 1"
    )


def test_a_bad_flag_names_the_boolean_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_DEBUG", "maybe")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: bad setting UOOM_DEBUG: Input should be a valid boolean")
    assert "accepted: true or false" in result.stderr


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "True"])
def test_uoom_debug_takes_every_boolean_form(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("UOOM_DEBUG", value)
    monkeypatch.setenv("UOOM_DATABASE_URL", NOWHERE_PG)
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ServiceUnavailable"  # raised, not turned into one line


@pytest.mark.parametrize("value", ["0", "false", "no"])
def test_uoom_debug_off_keeps_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("UOOM_DEBUG", value)
    monkeypatch.setenv("UOOM_DATABASE_URL", NOWHERE_PG)
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert len(result.stderr.strip().splitlines()) == 1


def test_settings_are_read_once_per_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    from uoom import config

    built = []
    original = config.Settings.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(config.Settings, "__init__", counting)
    assert runner.invoke(app, ["config"]).exit_code == 0
    assert runner.invoke(app, ["config", "--json"]).exit_code == 0
    assert len(built) == 2


def test_stack_up_says_what_each_service_is_doing_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    from uoom.stack import StackStatus
    from uoom.stack.base import ServiceStatus

    class SlowFirstStart:
        def __init__(self, settings: Any) -> None:
            pass

        def select(self, names: list[str] | None) -> list[str]:
            return names or []

        async def up(self, names: list[str] | None, progress: Any) -> StackStatus:
            progress("kafka", "fetching the Kafka 3.9.1 jars with Maven (first start only: a few minutes)")
            progress("kafka", "waiting for it to answer")
            progress("kafka", "up")
            return StackStatus([ServiceStatus("kafka", "127.0.0.1:9092", True, 42, True, "Kafka 3.9.1 (KRaft)")])

    monkeypatch.setattr("uoom.stack.Stack", SlowFirstStart)
    result = runner.invoke(app, ["stack", "up", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["version"] == "Kafka 3.9.1 (KRaft)"
    assert result.stderr.splitlines()[:2] == [
        "kafka: fetching the Kafka 3.9.1 jars with Maven (first start only: a few minutes)",
        "kafka: waiting for it to answer",
    ]


def test_ctrl_c_is_exit_130_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    from commands._output import command

    @command
    async def waits_forever() -> None:
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as stopped:
        waits_forever()
    assert stopped.value.exit_code == 130
    assert capsys.readouterr().err.strip() == "interrupted"
