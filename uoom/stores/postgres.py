"""The asyncpg pool every daemon opens once, with JSON codecs (the outbox lives in outbox.py)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from uoom.config import Settings


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda v: orjson.dumps(v, default=str).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (`RESET ALL; UNLISTEN *; CLOSE ALL; ...`): a
    round trip on every release, two per order on the create path and one per relay batch, for
    session state nobody sets. No pool user runs SET, takes session advisory locks (the
    optimizer's leader lock is a transaction's) or keeps cursors; the one LISTEN
    (uoom/live_channels.py) is removed before its connection goes back; and asyncpg still rolls
    back a transaction left open and drops listener callbacks."""


async def create_pool(settings: Settings, **overrides: Any) -> asyncpg.Pool:
    options: dict[str, Any] = {
        "min_size": 1,
        "max_size": settings.database_pool_size,
        "command_timeout": 10,
        "init": _init_connection,
        "reset": _keep_session,
    }
    options.update(overrides)
    return await asyncpg.create_pool(settings.database_url.get_secret_value(), **options)


async def connect(settings: Settings, connect_timeout: float = 5.0) -> asyncpg.Connection:
    """One connection set up like the pool's (JSON codecs), for short admin work such as the CLI."""
    dsn = settings.database_url.get_secret_value()
    conn = await asyncpg.connect(dsn, timeout=connect_timeout, command_timeout=10)
    await _init_connection(conn)
    return conn
