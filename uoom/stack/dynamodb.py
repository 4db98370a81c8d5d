"""A local DynamoDB endpoint: dynoxide when it is installed, moto's server otherwise.

DynamoDB Local (the vendor's jar) is not under an open-source licence, so it is not used here.
Two open-source servers speak the same HTTP/JSON protocol (tables, GSIs, TTL settings,
conditional writes, BatchGetItem):

- dynoxide (crates.io `dynoxide-rs`, MIT/Apache-2.0, Rust on SQLite): a tenth of moto's CPU per
  call or less (docs/performance.md). `scripts/setup` builds the pinned version with cargo
  (rustc >= 1.88) into `~/.cache/uoom/dynoxide-<version>/`, shared by every stack home.
- moto's server mode, from PyPI with the project's `stack` extra (`pip install 'uoom[stack]'`).

`UOOM_DYNAMODB_SERVER` picks one (`auto`: dynoxide when installed). Both run in memory: the read
model is rebuilt by `uoom migrate up` (table) and the relay's projector (items) after a restart.
The daemons never need either.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

from uoom.config import Settings
from uoom.errors import PrerequisiteMissing
from uoom.stack.base import Held, LocalService, plural
from uoom.stores.aws import dynamodb_client

DYNOXIDE_VERSION = "3.2.0"  # scripts/setup installs exactly this one


def dynoxide_path() -> Path:
    """Where scripts/setup installs the pinned dynoxide (one per user, as the Kafka jars)."""
    return Path.home() / ".cache" / "uoom" / f"dynoxide-{DYNOXIDE_VERSION}" / "bin" / "dynoxide"


def moto_path() -> Path:
    return Path(sys.executable).with_name("moto_server")


def chosen_server(settings: Settings) -> str:
    """`dynoxide` or `moto`: the setting, or with `auto` dynoxide when it is installed."""
    if settings.dynamodb_server != "auto":
        return settings.dynamodb_server
    return "dynoxide" if dynoxide_path().exists() else "moto"


def server_command(server: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line of a DynamoDB server listening on host:port, keeping its data in memory."""
    if server == "dynoxide":
        return [str(dynoxide_path()), "serve", "--host", host, "--port", str(port)]
    return [str(moto_path()), "-H", host, "-p", str(port)]


class DynamoDB(LocalService):
    name = "dynamodb"
    in_memory = True  # both servers keep every table in memory (dynoxide: no --db-path)

    @property
    def server(self) -> str:
        return chosen_server(self.settings)

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

    def check_prerequisites(self) -> None:
        if self.server == "dynoxide" and not dynoxide_path().exists():
            raise PrerequisiteMissing(
                f"dynoxide {DYNOXIDE_VERSION} not found at {dynoxide_path()}: run scripts/setup "
                "(it builds it with cargo, rustc >= 1.88), or set UOOM_DYNAMODB_SERVER=moto"
            )
        if self.server == "moto" and not moto_path().exists():
            raise PrerequisiteMissing(
                "moto_server not found: install the local stack's extra: .venv/bin/pip install -e '.[stack]' "
                "(or run scripts/setup)"
            )

    def start_step(self) -> str:
        return f"starting {self.server}"

    def command(self) -> list[str]:
        return server_command(self.server, self.port)

    async def probe(self) -> str:
        async with dynamodb_client(self.settings, fail_fast=True) as client:
            answer = await client.list_tables(Limit=1)
        # Whatever answers says what it is: dynoxide names itself in a header of every response.
        dynoxide = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-dynoxide-version")
        if dynoxide:
            return f"dynoxide {dynoxide} (DynamoDB API)"
        return f"moto {version('moto')} (DynamoDB API)" if self.pid() else "DynamoDB"

    async def holds(self) -> Held | None:
        async with dynamodb_client(self.settings, fail_fast=True) as client:
            tables = (await client.list_tables())["TableNames"]
            # moto and dynoxide count a table's items when asked (AWS refreshes ItemCount every few hours)
            items = {t: (await client.describe_table(TableName=t))["Table"]["ItemCount"] for t in tables}
        if not tables:
            return None
        counted = ", ".join(f"{name} ({plural(n, 'item')})" for name, n in items.items())
        return Held(f"{plural(len(tables), 'table')}: {counted}; the read model is rebuilt from PostgreSQL", lost=True)
