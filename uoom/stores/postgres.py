"""The asyncpg pool every daemon opens once, with JSON codecs, and the outbox writer."""

from __future__ import annotations

import uuid
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


async def create_pool(settings: Settings, **overrides: Any) -> asyncpg.Pool:
    options: dict[str, Any] = {
        "min_size": 1,
        "max_size": settings.database_pool_size,
        "command_timeout": 10,
        "init": _init_connection,
    }
    options.update(overrides)
    return await asyncpg.create_pool(settings.database_url.get_secret_value(), **options)


async def append_event(
    conn: asyncpg.Connection,
    event_type: str,
    aggregate_id: uuid.UUID,
    aggregate_version: int,
    data: dict[str, Any],
    aggregate_type: str = "order",
) -> uuid.UUID:
    """Write an outbox row; call inside the transaction that changes the aggregate."""
    event_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO outbox_events (id, type, aggregate_id, aggregate_type, aggregate_version, data)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        event_id,
        event_type,
        aggregate_id,
        aggregate_type,
        aggregate_version,
        data,
    )
    return event_id


async def ensure_reachable(settings: Settings, connect_timeout: float = 3.0) -> None:
    """Fail fast, in one line, before a daemon starts serving without its database."""
    from uoom.config import mask_url
    from uoom.errors import ServiceUnavailable

    dsn = settings.database_url.get_secret_value()
    try:
        conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise ServiceUnavailable(
            f"cannot reach PostgreSQL at {mask_url(dsn)} ({type(exc).__name__}); start it with `uoom stack up`"
        ) from None
    await conn.close()
