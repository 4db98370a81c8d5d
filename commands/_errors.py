"""Known failures as one line that says what is wrong and what to do, with the exit code."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from commands._output import ExitCode

if TYPE_CHECKING:
    from pydantic import ValidationError

    from uoom.config import Settings
    from uoom.errors import ServiceUnavailable

# stack service -> (what people call it, the setting that says where it is)
SERVICES = {
    "postgres": ("PostgreSQL", "database_url"),
    "redis": ("Redis", "redis_url"),
    "kafka": ("Kafka", "kafka_bootstrap"),
    "dynamodb": ("DynamoDB", "dynamodb_endpoint"),
}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def describe(exc: Exception) -> tuple[str, int]:
    from uoom.redact import mask_secrets

    message, code = _describe(exc)
    return mask_secrets(message), code  # an exception's message may quote a URL with its password


def _describe(exc: Exception) -> tuple[str, int]:
    from pydantic import ValidationError

    from uoom.errors import UoomError

    if isinstance(exc, UoomError):
        return str(exc), exc.exit_code
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return bad_settings(exc), ExitCode.USAGE
    not_migrated = _not_migrated(exc)
    if not_migrated:
        return not_migrated, ExitCode.PROBLEM
    if isinstance(exc, (ConnectionError, OSError, TimeoutError)):
        return (
            f"a service is not answering ({_one_line(exc)}); see which with `uoom stack status`",
            ExitCode.PROBLEM,
        )
    return f"{_one_line(exc)} (UOOM_DEBUG=true shows the traceback)", ExitCode.PROBLEM


def bad_settings(exc: ValidationError) -> str:
    """`bad setting UOOM_X: <what pydantic says> (got 'v'); accepted: <forms>`, every bad one."""
    from uoom.config import Settings, accepted_forms, env_name, field_for

    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        field = field_for(name)
        if field is None:
            problems.append(f"{name}: {error['msg']}")
            continue
        secret = "secret" in str(Settings.model_fields[field].annotation).lower()
        got = "" if secret else f" (got {error.get('input')!r})"
        problems.append(f"{env_name(field)}: {error['msg']}{got}; accepted: {accepted_forms(field)}")
    return "bad setting " + "; ".join(problems)


def unavailable(
    service: str, settings: Settings, exc: BaseException, also: list[str] | None = None
) -> ServiceUnavailable:
    """`PostgreSQL at postgresql://127.0.0.1:5432/uoom is not answering (...); start it with ...`"""
    from uoom.config import env_name
    from uoom.errors import ServiceUnavailable

    label, field = SERVICES[service]
    raw = getattr(settings, field)
    url = _without_credentials(raw.get_secret_value() if hasattr(raw, "get_secret_value") else str(raw))
    local = (urlsplit(url).hostname if "://" in url else url.rpartition(":")[0]) in LOCAL_HOSTS
    if type(exc).__name__ == "InvalidCatalogNameError":
        fix = "`uoom stack up` creates it" if local else f"create it, or check {env_name(field)}"
        return ServiceUnavailable(f"{label} at {url} has no such database ({exc}); {fix}")
    fix = "start it with `uoom stack up`" if local else f"check {env_name(field)} and that it is reachable"
    others = f"; also not answering: {', '.join(SERVICES[n][0] for n in also)}" if also else ""
    return ServiceUnavailable(f"{label} at {url} is not answering ({_reason(exc)}); {fix}{others}")


def _not_migrated(exc: Exception) -> str | None:
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None or not isinstance(exc, (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError)):
        return None
    from commands._context import current

    url = _without_credentials(current().settings.database_url.get_secret_value())
    return f"the database at {url} is not migrated ({exc}): run `uoom migrate up`"


def _without_credentials(url: str) -> str:
    """The URL without its user info, its secret query values masked (uoom/redact.py)."""
    from uoom.redact import mask_url

    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    return mask_url(f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}")


def _reason(exc: BaseException) -> str:
    chain = [exc, exc.__cause__, exc.__context__]
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connect call failed" in str(exc):
        return "connection refused"
    if any(isinstance(e, TimeoutError) for e in chain) or "timeout" in type(exc).__name__.lower():
        return "no answer in time"
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
