"""Redis from the Debian package, in the foreground, nothing persisted."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as aioredis

from uoom.stack.base import LocalService, require_program

FIX = "install Redis: apt-get install -y redis-server (or run scripts/setup)"


class Redis(LocalService):
    name = "redis"

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
