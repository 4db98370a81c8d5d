"""Redis from the Debian package, in the foreground, nothing persisted."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as aioredis

from uoom.stack.base import Held, LocalService, plural, require_program

FIX = "install Redis: apt-get install -y redis-server (or run scripts/setup)"


class Redis(LocalService):
    name = "redis"
    in_memory = True  # started with persistence off

    @property
    def _raw(self) -> str:
        return self.settings.redis_url.get_secret_value()

    @property
    def url(self) -> str:
        p = urlsplit(self._raw)
        return f"redis://{p.hostname}:{p.port or 6379}{p.path}"

    @property
    def host(self) -> str:
        return urlsplit(self._raw).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self._raw).port or 6379

    def check_prerequisites(self) -> None:
        require_program("redis-server", FIX)

    def command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            require_program("redis-server", FIX),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.data_dir),
        ]

    async def probe(self) -> str:
        # Probed beside the others: their synchronous set-up (botocore's models) may hold the loop
        # for a second on a busy machine, so the connect timeout leaves room for that.
        client = aioredis.from_url(self._raw, socket_connect_timeout=3, socket_timeout=3)
        try:
            await client.ping()
            info = await client.info("server")
            return f"Redis {info['redis_version']}"
        finally:
            await client.aclose()

    async def holds(self) -> Held | None:
        client = aioredis.from_url(self._raw, socket_connect_timeout=3, socket_timeout=3)
        try:
            keyspace = await client.info("keyspace")  # {"db0": {"keys": 3, ...}, ...}: only databases with keys
        finally:
            await client.aclose()
        keys = {db: int(info["keys"]) for db, info in keyspace.items() if int(info.get("keys", 0))}
        if not keys:
            return None
        where = ", ".join(f"{n:,} in {db}" for db, n in sorted(keys.items()))
        return Held(f"{plural(sum(keys.values()), 'key')} ({where}): rankings, weights, channel load", lost=True)
