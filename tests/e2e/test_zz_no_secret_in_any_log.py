"""No daemon log holds a secret: not an API key (ours or one a client made up), not the optimizer's
key, not a password of a URL, not the AWS secret key.

First a platform runs with a secret in every setting that can hold one (a database URL with a
password in its user info and in its query, the AWS secret key, the optimizer's key), with debug
logging, through the things that make daemons log: unknown keys, a wrong optimizer key, PostgreSQL
cut away and back. Then every log under the session's temporary directory is read: when the e2e
tests run together (this module's name sorts it last), that is every daemon log they all wrote.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import TcpProxy, create_key, free_port, load_demo, order_body, poll, run_api, run_daemon
from tests.integration.relay_support import relay_dsn, topic
from uoom.config import Settings
from uoom.tokens import TOKEN_FILE

__all__ = ["relay_dsn", "topic"]  # fixtures

# any API key (uoom/apikeys.py: "uoom_" + 32 random bytes, base64url), a URL's password in clear,
# a password= pair in clear; the masked forms (********) do not match
LEAKS = [
    re.compile(r"uoom_[A-Za-z0-9_-]{43}"),
    re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:(?!\*{8}@)[^@\s/]+@"),
    re.compile(r"(?i)(?:^|[^a-z])(?:ssl)?password=(?!\*{8})[^&\s'\"]+"),
]
PLANTED: set[str] = set()  # the secret values the platform below ran with


def leaks_in(text: str, values: set[str]) -> list[str]:
    found = [v for v in values if v and v in text]
    return found + [m.group(0) for pattern in LEAKS for m in pattern.finditer(text)]


def test_the_scanner_finds_each_kind_of_secret(tmp_path: Path) -> None:
    """The check below can fail: each kind of leak, written as a careless log line would."""
    key = "uoom_" + secrets.token_urlsafe(32)
    for line in (f"auth failed for {key}", "connecting to postgresql://app:hunter2@db/uoom",
                 "dsn=postgresql://app@db/uoom?sslmode=require&password=hunter2", "token s3cr3t-v4lue"):  # fmt: skip
        assert leaks_in(line, {"s3cr3t-v4lue"}), line
    for line in ("connecting to postgresql://app:********@db/uoom?password=********", "key uoom_abc… unknown"):
        assert not leaks_in(line, {"s3cr3t-v4lue"}), line


@dataclass
class SecretPlatform:
    api: str
    optimizer: str
    proxy: TcpProxy  # PostgreSQL, as the three daemons reach it
    dsn: str  # the scratch database, directly
    logs: Path


@pytest.fixture
def secret_platform(relay_dsn: str, topic: str, tmp_path: Path) -> Iterator[SecretPlatform]:
    """API, optimizer and relay with a secret in every setting that can hold one, debug logging,
    PostgreSQL behind a proxy the test can cut."""
    asyncio.run(load_demo(relay_dsn))
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    password, query_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    token, aws_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(30)
    PLANTED.update({password, query_password, token, aws_secret})
    database = urlsplit(relay_dsn).path
    optimizer_port, relay_port = free_port(), free_port()
    env = {"UOOM_DEBUG": "true", "UOOM_KAFKA_TOPIC": topic, "UOOM_KAFKA_DLQ_TOPIC": f"{topic}.dlq",
           "UOOM_DATABASE_URL": f"postgresql://uoom:{password}@{proxy.address}{database}?password={query_password}",
           "AWS_SECRET_ACCESS_KEY": aws_secret, "UOOM_OPTIMIZER_TOKEN": token, "UOOM_DISPATCH_INTERVAL": "0.5",
           "UOOM_OPTIMIZER_URL": f"http://127.0.0.1:{optimizer_port}", "UOOM_RELAY_METRICS_PORT": str(relay_port),
           "UOOM_RELAY_PROJECTOR": "false"}  # fmt: skip
    daemon_env = dict(os.environ, **env)
    try:
        with (
            run_daemon(tmp_path / "optimizer.log", ["optimizer", "--port", str(optimizer_port)], daemon_env,
                       f"{env['UOOM_OPTIMIZER_URL']}/healthz"),
            run_daemon(tmp_path / "relay.log", ["relay"], daemon_env, f"http://127.0.0.1:{relay_port}/api/v1/metrics"),
            run_api(tmp_path, "secrets", **env) as api,
        ):  # fmt: skip
            yield SecretPlatform(api.url, env["UOOM_OPTIMIZER_URL"], proxy, relay_dsn, tmp_path)
    finally:
        proxy.cut()


async def test_the_daemons_log_no_secret_while_things_go_wrong(
    secret_platform: SecretPlatform, settings: Settings
) -> None:
    platform = secret_platform
    _, key = await create_key(settings, "logs", dsn=platform.dsn)
    PLANTED.add(key)
    made_up = "uoom_" + secrets.token_urlsafe(32)
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=platform.api, timeout=10) as client:
        created = await client.post("/api/orders", json=order_body(), headers=auth)
        assert created.status_code == 201, created.text
        assert created.json()["assignmentSource"] == "optimizer"  # the optimizer's key got through
        for headers in ({"Authorization": f"Bearer {made_up}"}, {"X-API-Key": made_up}):
            assert (await client.get(f"/api/orders/{created.json()['id']}", headers=headers)).status_code == 401
        wrong = await client.post(f"{platform.optimizer}/optimize", json={"orders": []},
                                  headers={"Authorization": f"Bearer {made_up}"})  # fmt: skip
        assert wrong.status_code == 401
        # PostgreSQL goes away under every daemon, then comes back: the API recovers by itself
        platform.proxy.cut()
        refused = await client.post("/api/orders", json=order_body(), headers=auth)
        assert refused.status_code == 503, refused.text
        await asyncio.sleep(2)
        platform.proxy.start()

        async def recovered() -> bool:
            return (await client.post("/api/orders", json=order_body(), headers=auth)).status_code == 201

        ok, _ = await poll(recovered, timeout=20, interval=0.5)
        assert ok, "the API did not recover after PostgreSQL came back"
    logs = sorted(platform.logs.glob("*.log"))
    assert [p.name.split("-")[0] for p in logs] == ["api", "optimizer.log", "relay.log"], logs
    assert "unavailable" in logs[0].read_text(errors="replace"), "the outage left no line: nothing exercised"
    for path in logs:
        found = leaks_in(path.read_text(errors="replace"), PLANTED)
        assert not found, f"{path.name} holds secrets: {found[:3]}"


def test_no_daemon_log_of_the_session_holds_a_key_a_token_or_a_password(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings
) -> None:
    """Every log file under the session's base temporary directory: with the whole e2e suite, the
    logs of every daemon its tests started (API, optimizer, relay, `uoom up`, DynamoDB)."""
    shared = settings.home / TOKEN_FILE
    values = set(PLANTED) | ({shared.read_text().strip()} if shared.exists() else set())
    logs = [p for p in tmp_path_factory.getbasetemp().rglob("*.log") if p.is_file()]
    assert logs, "no daemon log to read"
    leaking = {str(p.relative_to(tmp_path_factory.getbasetemp())): found[:3]
               for p in logs if (found := leaks_in(p.read_text(errors="replace"), values))}  # fmt: skip
    assert not leaking, leaking
