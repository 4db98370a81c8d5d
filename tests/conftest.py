"""Shared fixtures. Services are real: the session starts the local stack if it is not up and
stops again only what it started, so a plain `pytest` works on a fresh machine."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# Tests get their own database so a developer's data survives a test run.
os.environ.setdefault("UOOM_DATABASE_URL", "postgresql://uoom@127.0.0.1:5432/uoom_test")
os.environ.setdefault("UOOM_REDIS_URL", "redis://127.0.0.1:6379/1")
REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("UOOM_HOME", str(REPO / ".uoom"))
# Most tests check what happens to an order when it is placed: its channel, its trip, its events.
# Under the default dispatch policy (in-time) most orders get none then, so the suite runs rolling
# (a channel at creation) and the tests of in-time dispatch set it themselves.
os.environ.setdefault("UOOM_DISPATCH_POLICY", "rolling")


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    from uoom.config import Settings

    return Settings()


@pytest.fixture(scope="session")
def stack(settings):  # type: ignore[no-untyped-def]
    """The real local stack, migrated and provisioned."""
    from uoom import migrate
    from uoom.provision import provision
    from uoom.stack import Stack

    local = Stack(settings)
    before = asyncio.run(local.status())
    asyncio.run(local.up())
    asyncio.run(migrate.up(settings.database_url.get_secret_value()))
    asyncio.run(provision(settings))
    yield local
    started_here = [s.name for s in before if not s.up]
    if started_here and os.environ.get("UOOM_KEEP_STACK") != "1":
        local.down(started_here)


@pytest.fixture
async def scratch_dsn(stack, settings) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, empty database for one test, dropped afterwards."""
    import asyncpg

    base = settings.database_url.get_secret_value().rsplit("/", 1)[0]
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(f"{base}/postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


# Redis databases that one test module owns alone: the daemons of the e2e tests share db 1, and
# the channel loads and weights they leave there would change what these modules observe.
PRIVATE_REDIS_DB = {"test_optimizer_trips": 10, "test_reoptimizer": 11, "test_live_channels": 12, "test_rankings": 13,
                    "test_weights_tune": 14, "test_dash_screens": 15, "test_in_time_trips": 7}  # fmt: skip


@pytest.fixture
async def private_redis_url(request, settings) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """An emptied Redis database of this test module's own (see PRIVATE_REDIS_DB)."""
    import redis.asyncio as aioredis

    db = PRIVATE_REDIS_DB[request.module.__name__.rsplit(".", 1)[-1]]
    url = settings.redis_url.get_secret_value().rsplit("/", 1)[0] + f"/{db}"
    client = aioredis.from_url(url)
    await client.flushdb()
    await client.aclose()
    yield url


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Iterator[Path]:
    """The project's migrations in a folder a test may edit."""
    from uoom.migrate import MIGRATIONS_DIR

    target = tmp_path / "migrations"
    target.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (target / path.name).write_text(path.read_text())
    yield target
