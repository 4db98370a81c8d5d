"""No secret is shown or logged: every form a secret takes in a URL (user info, a query parameter
such as `?password=`, percent-encoded, several hosts, an IPv6 host), wherever a URL is shown or
logged: `uoom config` (table and JSON), every service URL, the one-line errors, daemon log lines."""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from commands.main import app
from uoom.config import Settings, mask_url

runner = CliRunner()
SECRET = "Hunter2-s3cret"
ENCODED = quote("p@ss/w:rd?#", safe="")  # a password with the characters that need encoding

# every way a secret sits in a URL: (URL, the secrets it holds)
URLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "user info": (f"postgresql://app:{SECRET}@db:5432/uoom", (SECRET,)),
    "query password": (f"postgresql://app@db:5432/uoom?password={SECRET}", (SECRET,)),
    "query password among others": (f"postgresql://app@db/uoom?sslmode=disable&password={SECRET}&x=1", (SECRET,)),
    "sslpassword": (f"postgresql://app@db/uoom?sslpassword={SECRET}", (SECRET,)),
    "both": (f"postgresql://app:{SECRET}@db/uoom?password={SECRET}", (SECRET,)),
    "percent-encoded": (f"postgresql://app:{ENCODED}@db/uoom", (ENCODED, "p@ss")),
    "several hosts": (f"postgresql://app:{SECRET}@db1:5432,db2:5433/uoom", (SECRET,)),
    "an IPv6 host": (f"postgresql://app:{SECRET}@[::1]:5432/uoom", (SECRET,)),
    "a socket directory": (f"postgresql:///uoom?host=/nonexistent-dir&password={SECRET}", (SECRET,)),
    "redis without user": (f"redis://:{SECRET}@cache:6379/0", (SECRET,)),
    "redis query password": (f"redis://cache:6379/0?password={SECRET}", (SECRET,)),
    "a token parameter": (f"https://user@optimizer.internal:3002/?token={SECRET}", (SECRET,)),
}


def leaked(text: str, secrets: tuple[str, ...]) -> list[str]:
    return [s for s in secrets if s in text]


@pytest.mark.parametrize("form", list(URLS))
def test_mask_url_hides_the_secret_and_keeps_the_rest_readable(form: str) -> None:
    url, secrets = URLS[form]
    masked = mask_url(url)
    assert not leaked(masked, secrets), masked
    assert "********" in masked
    assert url.rpartition("@")[2].partition("?")[0] in masked  # the host(s), the port(s), the path


def test_mask_url_leaves_urls_without_a_secret_as_they_are() -> None:
    for url in ("redis://127.0.0.1:6379/0", "postgresql://uoom@127.0.0.1:5432/uoom?sslmode=disable",
                "http://127.0.0.1:8000", "postgresql://u@db1:1,db2:2/x", "127.0.0.1:9092"):  # fmt: skip
        assert mask_url(url) == url


URL_SETTINGS = ["UOOM_DATABASE_URL", "UOOM_REDIS_URL", "DYNAMODB_ENDPOINT", "UOOM_OPTIMIZER_URL",
                "UOOM_DAX_CONTROL_ENDPOINT", "UOOM_CLOUDWATCH_ENDPOINT"]  # fmt: skip


@pytest.mark.parametrize("form", list(URLS))
@pytest.mark.parametrize("variable", URL_SETTINGS)
def test_uoom_config_shows_no_secret_of_any_url_setting(monkeypatch: pytest.MonkeyPatch, form: str,
                                                        variable: str) -> None:  # fmt: skip
    url, secrets = URLS[form]
    monkeypatch.setenv(variable, url)
    for args in (["config"], ["config", "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
        assert not leaked(result.stdout + result.stderr, secrets), result.stdout
    assert not leaked(json.dumps(Settings(_env_file=None).masked(), default=str), secrets)


@pytest.mark.parametrize("form", [f for f in URLS if URLS[f][0].startswith("postgresql")])
def test_the_one_line_error_about_a_database_shows_no_secret(monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    url, secrets = URLS[form]
    monkeypatch.setenv("UOOM_DATABASE_URL", url.replace(":5432", ":1").replace("db", "127.0.0.1"))
    result = runner.invoke(app, ["migrate", "status"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: "), result.stderr
    assert not leaked(result.stdout + result.stderr, secrets), result.stderr


@pytest.mark.parametrize("form", list(URLS))
def test_an_unexpected_error_naming_a_url_is_shown_without_its_secret(form: str) -> None:
    from commands._errors import describe

    url, secrets = URLS[form]
    message, _ = describe(RuntimeError(f"could not reach {url}: refused"))
    assert not leaked(message, secrets), message


@pytest.mark.parametrize("form", list(URLS))
def test_daemon_log_lines_show_no_secret_of_a_url_or_a_key(form: str) -> None:
    from daemons.kit.logs import setup_logging

    url, secrets = URLS[form]
    setup_logging()
    (handler,) = [h for h in logging.getLogger().handlers if type(h).__name__ == "_DaemonHandler"]
    written = io.StringIO()
    previous = handler.setStream(written)  # type: ignore[attr-defined]
    log = logging.getLogger("uoom.test")
    log.warning("connecting to %s", url)
    log.warning("retrying with dsn='%s' password=%s token=%s", url, SECRET, SECRET)
    log.warning("sent Authorization: Bearer %s", SECRET)
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        log.exception("failed")
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    err = written.getvalue()
    assert "connecting to" in err and "Traceback" in err
    assert not leaked(err, (*secrets, SECRET)), err


def test_uoom_doctor_shows_no_secret_of_the_urls_it_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every service at a closed port, every URL carrying secrets: each row fails, none shows one."""
    monkeypatch.setenv("UOOM_DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/uoom?password={SECRET}")
    monkeypatch.setenv("UOOM_REDIS_URL", f"redis://:{SECRET}@127.0.0.1:1/0?password={SECRET}")
    monkeypatch.setenv("UOOM_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("DYNAMODB_ENDPOINT", f"http://key:{SECRET}@127.0.0.1:1")
    monkeypatch.setenv("UOOM_OPTIMIZER_URL", f"http://127.0.0.1:1/?token={SECRET}")
    monkeypatch.setenv("UOOM_CHECK_TIMEOUT", "1")
    for args in (["doctor"], ["doctor", "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.stdout + result.stderr
        assert "postgres" in result.stdout
        assert SECRET not in result.stdout + result.stderr, result.stdout + result.stderr


def test_uoom_config_shows_no_key_or_secret_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_OPTIMIZER_TOKEN", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET + "-aws")
    for args in (["config"], ["config", "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr
        assert "optimizer_token" in result.stdout or "optimizerToken" in result.stdout
