"""PostgreSQL from the Debian packages, on its own data directory and port."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from uoom.errors import PrerequisiteMissing, ServiceUnavailable
from uoom.stack import process
from uoom.stack.base import Held, LocalService, plural

ROW_CAP = 100_000  # rows counted per table before `stack down` says "+"
FIX = "install PostgreSQL: apt-get install -y postgresql (or run scripts/setup)"


def find_pg_bin() -> Path | None:
    """Debian keeps the server binaries out of PATH, one folder per major version."""
    roots = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return roots[-1].parent if roots else None


class Postgres(LocalService):
    name = "postgres"
    stop_signal_name = "SIGINT"  # "fast" shutdown: aborts sessions, no wait on idle clients

    @property
    def dsn(self) -> str:
        return self.settings.database_url.get_secret_value()

    @property
    def _parts(self):  # type: ignore[no-untyped-def]
        return urlsplit(self.dsn)

    @property
    def url(self) -> str:
        p = self._parts
        return f"postgresql://{p.hostname}:{p.port or 5432}{p.path}"

    @property
    def host(self) -> str:
        return self._parts.hostname or ""

    @property
    def port(self) -> int:
        return self._parts.port or 5432

    @property
    def database(self) -> str:
        return self._parts.path.lstrip("/") or "postgres"

    @property
    def superuser(self) -> str:
        return self._parts.username or "postgres"

    def check_prerequisites(self) -> None:
        if find_pg_bin() is None:
            raise PrerequisiteMissing(f"initdb not found: {FIX}")
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PrerequisiteMissing(f"user 'postgres' missing: {FIX}") from None

    def run_as(self) -> str | None:
        # The server refuses to run as root; the Debian package brings a 'postgres' user.
        return "postgres" if os.geteuid() == 0 else None

    def start_step(self) -> str:
        if (self.data_dir / "data" / "PG_VERSION").exists():
            return "starting"
        return "creating its data directory (initdb), then starting"

    def prepare(self) -> None:
        pgdata = self.data_dir / "data"
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        if (pgdata / "PG_VERSION").exists():
            return
        pgdata.mkdir(parents=True, exist_ok=True)
        user = self.run_as()
        if user:
            _make_reachable_by(user, self.data_dir)
        bin_dir = find_pg_bin()
        assert bin_dir is not None
        initdb = [str(bin_dir / "initdb"), "-D", str(pgdata), "-U", self.superuser]
        result = subprocess.run(
            [*initdb, "--auth=trust", "-E", "UTF8", "--no-instructions"],
            capture_output=True,
            text=True,
            **process.as_user(user),
        )
        if result.returncode != 0:
            tail = result.stderr.strip().splitlines() or ["no output"]
            raise ServiceUnavailable(f"initdb failed: {tail[-1]} (data dir {pgdata})")

    def command(self) -> list[str]:
        bin_dir = find_pg_bin()
        assert bin_dir is not None
        return [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data_dir / "data"),
            "-p",
            str(self.port),
            "-k",
            str(self.data_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=300",
        ]

    async def probe(self) -> str:
        conn = await asyncpg.connect(self.dsn.rsplit("/", 1)[0] + "/postgres", timeout=2)
        try:
            return "PostgreSQL " + str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    async def holds(self) -> Held | None:
        conn = await asyncpg.connect(self.dsn.rsplit("/", 1)[0] + "/postgres", timeout=3)
        try:
            databases = [r["datname"] for r in await conn.fetch(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY datname"
            )]  # fmt: skip
        finally:
            await conn.close()
        others = [d for d in databases if d != self.database]
        parts = []
        if self.database in databases:
            counts = await self._rows()
            if any(counts):
                more = "+" if max(counts) >= ROW_CAP else ""
                held = sum(1 for c in counts if c)
                parts.append(
                    f"{plural(sum(counts), 'row')}{more} in {plural(held, 'table')} of database {self.database}"
                )
        if others:
            parts.append(
                f"{plural(len(others), 'other database')}: {', '.join(others[:5])}{', ...' * (len(others) > 5)}"
            )
        return Held(f"{'; '.join(parts)} (on disk in {self.data_dir / 'data'})", lost=False) if parts else None

    async def _rows(self) -> list[int]:
        """Rows of each table of the configured database, each counted up to ROW_CAP (quick on big ones)."""
        conn = await asyncpg.connect(self.dsn, timeout=3)
        try:
            tables = await conn.fetch("SELECT format('%I.%I', schemaname, relname) AS t FROM pg_stat_user_tables")
            return [
                await conn.fetchval(f"SELECT count(*) FROM (SELECT 1 FROM {r['t']} LIMIT {ROW_CAP}) AS s")  # noqa: S608
                for r in tables
            ]
        finally:
            await conn.close()

    async def after_start(self) -> None:
        conn = await asyncpg.connect(self.dsn.rsplit("/", 1)[0] + "/postgres", timeout=5)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database)
            if not exists:
                # Identifiers cannot be bound as parameters; quote_ident makes the name safe.
                quoted = await conn.fetchval("SELECT quote_ident($1)", self.database)
                await conn.execute(f"CREATE DATABASE {quoted}")
        finally:
            await conn.close()


def _make_reachable_by(user: str, directory: Path) -> None:
    """Give `user` the data directory and traversal (x only) of its parents, e.g. a mktemp dir."""
    entry = pwd.getpwnam(user)
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in directory.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
