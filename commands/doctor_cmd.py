"""`uoom doctor`: the whole platform checked at once, one row per check with the fix for what fails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from commands._context import current
from commands._output import JSON_OPTION, ExitCode, command, emit_json, err, render

if TYPE_CHECKING:
    from uoom.config import Settings
    from uoom.health.checks import Check

COLUMNS = ("name", "state", "detail", "fix")
DAEMONS = (("api", "serve"), ("optimizer", "optimizer"), ("relay", "relay"))


def show(checks: Sequence[Check], as_json: bool, title: str, extra: dict[str, Any] | None = None) -> None:
    """The rows on stdout (a table, or JSON: `extra` plus the checks)."""
    if as_json:
        emit_json({**(extra or {}), "checks": [c.as_json() for c in checks]})
    else:
        render([c.as_json() for c in checks], COLUMNS, as_json=False, title=title)


@command
async def doctor(
    skip_daemons: bool = typer.Option(
        False, "--skip-daemons", help="Check the stores only: the daemons' rows are skipped, not failed."
    ),
    max_lag: float | None = typer.Option(
        None, "--max-lag", min=0, help="Outbox lag (s) above which the outbox row fails (UOOM_DOCTOR_MAX_OUTBOX_LAG)."
    ),
    max_dead_letters: int | None = typer.Option(
        None, "--max-dead-letters", min=0, help="Open dead letters allowed (UOOM_DOCTOR_MAX_DEAD_LETTERS)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check the whole platform: PostgreSQL and its migrations, Redis, Kafka and its topics, the
    DynamoDB table's shape, DAX (when configured), the three daemons, the outbox's lag and dead
    letters. One row per check, with the fix for what fails. Checks run at once, each bounded by
    UOOM_CHECK_TIMEOUT.

    Exit codes: 0 every check passed (ok, warn or skip), 1 a check failed, 2 a usage error.
    """
    import asyncio
    from functools import partial

    from uoom.health import platform
    from uoom.health.checks import bounded, start_or_check

    settings = current().settings
    seconds = settings.check_timeout
    lag = settings.doctor_max_outbox_lag if max_lag is None else max_lag
    dead = settings.doctor_max_dead_letters if max_dead_letters is None else max_dead_letters
    rows = [
        bounded("postgres", lambda: platform.postgres(settings), seconds, start_or_check(settings, "database_url")),
        bounded("redis", lambda: platform.redis(settings), seconds, start_or_check(settings, "redis_url")),
        bounded("kafka", lambda: platform.kafka(settings), seconds, start_or_check(settings, "kafka_bootstrap")),
        bounded(
            "dynamodb", lambda: platform.dynamodb(settings), seconds, start_or_check(settings, "dynamodb_endpoint")
        ),
        bounded("dax", lambda: _dax(settings), seconds + 4, "`uoom dax health` shows every row and its fix"),
        *(
            bounded(name, partial(_daemon, settings, name, verb, skip_daemons), seconds + 1, "`uoom up`")
            for name, verb in DAEMONS
        ),
        bounded("outbox", lambda: platform.outbox(settings, lag, dead), seconds, "check UOOM_DATABASE_URL"),
    ]
    checks = await asyncio.gather(*rows)
    failed = [c.name for c in checks if c.failed]
    show(checks, as_json, "uoom doctor", {"ok": not failed, "failed": failed})
    err.print(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "every check passed")
    raise typer.Exit(ExitCode.PROBLEM if failed else ExitCode.OK)


async def _dax(settings: Settings) -> Check:
    """DAX when configured: `uoom dax health`, summed up in one row."""
    from uoom.health.checks import DOWN, FAIL, OK, SKIP, Check
    from uoom.health.dax import HEALTHY, UNREACHABLE, Thresholds, dax_health

    if not settings.dax_endpoint:
        return Check("dax", SKIP, "not configured (DAX_ENDPOINT is empty)")
    report = await dax_health(settings, Thresholds.of(settings))
    wrong = [c.name for c in report.checks if c.failed]
    if report.status == HEALTHY:
        return Check("dax", OK, f"cluster {report.cluster_name} healthy")
    state = DOWN if report.status == UNREACHABLE else FAIL
    return Check("dax", state, f"{report.status} ({', '.join(wrong)})", "`uoom dax health` shows every row and its fix")


async def _daemon(settings: Settings, name: str, verb: str, skip: bool) -> Check:
    """A daemon's health from its metrics endpoint (the kit's `--check`)."""
    from daemons.kit.check import check
    from uoom.health.checks import FAIL, OK, SKIP, WARN, Check

    if skip:
        return Check(name, SKIP, "not checked (--skip-daemons)")
    urls = settings.service_urls()
    url = f"{urls['relay']}/api/v1/metrics" if name == "relay" else f"{urls[name]}/api/metrics"
    healthy, line = await check(name, url)
    if healthy:
        return Check(name, OK, line)
    if "wants an API key" in line:  # it answers: running, but its health is not ours to read
        return Check(name, WARN, line)
    if "not answering" in line:
        return Check(name, FAIL, line, f"start the platform with `uoom up` (or `uoom {verb}` alone)")
    return Check(name, FAIL, line, f"fix what its problems name (rows above), then `uoom {verb} --check`")
