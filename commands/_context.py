"""One context per `uoom` invocation: the settings, read once, and connections set up like the
daemons' (the stores' own connection set-up), each naming its service when it does not answer.

The root callback starts a fresh context for every invocation (also under `CliRunner`, where one
process runs many); a command reads it with `current()`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg
    import redis.asyncio as aioredis

    from uoom.config import Settings

_current: ContextVar[CliContext] = ContextVar("uoom_cli_context")


class CliContext:
    get: tuple[str, ...] = ()  # `uoom --get PATH ...`: print these values of the --json document only

    @cached_property
    def settings(self) -> Settings:
        """Environment, `.env` and defaults, validated on first use: a bad value fails here, before
        anything is connected to."""
        from uoom.config import Settings

        return Settings()

    @property
    def debug(self) -> bool:
        """UOOM_DEBUG as the settings read it (true, 1, yes, on), also when another setting is bad."""
        try:
            return self.settings.debug
        except ValueError:  # pydantic's ValidationError: read the one flag alone
            from pydantic import TypeAdapter, ValidationError

            try:
                return TypeAdapter(bool).validate_python(os.environ.get("UOOM_DEBUG", "false"))
            except ValidationError:
                return False

    @asynccontextmanager
    async def postgres(self) -> AsyncIterator[asyncpg.Connection]:
        """One PostgreSQL connection with the pool's set-up (JSON codecs), closed on exit."""
        import asyncpg

        from commands._errors import unavailable
        from uoom.stores.postgres import connect

        try:
            conn = await connect(self.settings)
        except (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.InvalidCatalogNameError) as exc:
            raise unavailable("postgres", self.settings, exc) from exc
        try:
            yield conn
        finally:
            await conn.close()

    async def check_postgres(self) -> None:
        """Fail now, naming PostgreSQL and the fix, when it does not answer: for work that opens
        its own connections (migrations, a daemon)."""
        async with self.postgres():
            pass

    @asynccontextmanager
    async def redis(self) -> AsyncIterator[aioredis.Redis]:
        """A Redis client that answered a PING, closed on exit."""
        import redis.asyncio as aioredis
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout

        from commands._errors import unavailable

        client = aioredis.from_url(self.settings.redis_url.get_secret_value(), socket_connect_timeout=2)
        try:
            try:
                await client.ping()
            except (RedisConnectionError, RedisTimeout, OSError) as exc:
                raise unavailable("redis", self.settings, exc) from exc
            yield client
        finally:
            await client.aclose()

    @asynccontextmanager
    async def stores(self) -> AsyncIterator[tuple[asyncpg.Connection, aioredis.Redis]]:
        async with self.postgres() as conn, self.redis() as redis:
            yield conn, redis

    async def require(self, *names: str) -> None:
        """Ask each named service of the stack whether it answers (at once); raise naming every one
        that does not, with the fix. For work that uses several services, before it starts."""
        import asyncio

        from commands._errors import unavailable
        from uoom.stack import Stack

        services = Stack(self.settings).select(list(names))

        async def probe(service: Any) -> BaseException | None:
            try:
                await asyncio.wait_for(service.probe(), timeout=5)
            except Exception as exc:  # noqa: BLE001 - any failure to answer is reported below
                return exc
            return None

        failures = await asyncio.gather(*(probe(s) for s in services))
        down = [(s.name, exc) for s, exc in zip(services, failures, strict=True) if exc is not None]
        if down:
            raise unavailable(down[0][0], self.settings, down[0][1], also=[n for n, _ in down[1:]])


def start() -> CliContext:
    """A fresh context for this invocation (the root callback calls it)."""
    context = CliContext()
    _current.set(context)
    return context


def current() -> CliContext:
    try:
        return _current.get()
    except LookupError:  # a command called without the root app (a test, a script)
        return start()
