"""A local DynamoDB endpoint.

DynamoDB Local (the vendor's jar) is not under an open-source licence, so it is not used here;
moto's server mode speaks the same HTTP/JSON protocol (tables, GSIs, TTL settings, conditional
writes, BatchGetItem) and installs from PyPI with the project's `stack` extra
(`pip install 'uoom[stack]'`): the daemons never need it. It keeps data in memory: the read
model is rebuilt by `uoom migrate up` (table) and the relay's projector (items) after a restart.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

from uoom.errors import PrerequisiteMissing
from uoom.stack.base import Held, LocalService, plural
from uoom.stores.aws import dynamodb_client


class DynamoDB(LocalService):
    name = "dynamodb"
    in_memory = True  # moto keeps every table in memory

    @property
    def url(self) -> str:
        return self.settings.dynamodb_endpoint

    @property
    def host(self) -> str:
        # An empty endpoint means AWS itself, which is never started here.
        return urlsplit(self.url).hostname or "aws" if self.url else "aws"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 8000

    def _server(self) -> Path:
        return Path(sys.executable).with_name("moto_server")

    def check_prerequisites(self) -> None:
        if not self._server().exists():
            raise PrerequisiteMissing(
                "moto_server not found: install the local stack's extra: .venv/bin/pip install -e '.[stack]' "
                "(or run scripts/setup)"
            )

    def command(self) -> list[str]:
        return [str(self._server()), "-H", "127.0.0.1", "-p", str(self.port)]

    async def probe(self) -> str:
        async with dynamodb_client(self.settings, fail_fast=True) as client:
            await client.list_tables(Limit=1)
        return f"moto {version('moto')} (DynamoDB API)" if self.pid() else "DynamoDB"

    async def holds(self) -> Held | None:
        async with dynamodb_client(self.settings, fail_fast=True) as client:
            tables = (await client.list_tables())["TableNames"]
            # moto counts a table's items when asked (AWS refreshes ItemCount every few hours)
            items = {t: (await client.describe_table(TableName=t))["Table"]["ItemCount"] for t in tables}
        if not tables:
            return None
        counted = ", ".join(f"{name} ({plural(n, 'item')})" for name, n in items.items())
        return Held(f"{plural(len(tables), 'table')}: {counted}; the read model is rebuilt from PostgreSQL", lost=True)
