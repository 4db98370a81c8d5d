"""`uoom keys create|list|revoke`: API keys, stored hashed; `create` prints the key once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import typer

from commands._output import JSON_OPTION, command, emit_json, err

app = typer.Typer(help="API keys for the order API.", no_args_is_help=True)


@asynccontextmanager
async def _conn() -> AsyncIterator[Any]:
    import asyncpg

    from uoom.config import Settings

    conn = await asyncpg.connect(Settings().database_url.get_secret_value())
    try:
        yield conn
    finally:
        await conn.close()


@app.command()
@command
async def create(name: str = typer.Argument(..., help="Who the key is for."), as_json: bool = JSON_OPTION) -> None:
    """Create a key and print it once, on its own line (it cannot be shown again)."""
    from uoom import apikeys

    async with _conn() as conn:
        key_id, key = await apikeys.create(conn, name)
    if as_json:
        emit_json({"id": str(key_id), "name": name, "key": key})
    else:
        typer.echo(key)
        err.print(f"key '{name}' created; store it now: it is not shown again")


@app.command("list")
@command
async def list_(as_json: bool = JSON_OPTION) -> None:
    """Every key: name, visible prefix, created, revoked, last used. Never the key itself."""
    from uoom import apikeys

    async with _conn() as conn:
        keys = await apikeys.list_keys(conn)
    if as_json:
        emit_json(keys)
        return
    from rich.table import Table

    table = Table("name", "prefix", "created", "revoked", "last used")
    for k in keys:
        table.add_row(k["name"], k["prefix"] + "…", str(k["created_at"])[:19],
                      str(k["revoked_at"] or "")[:19], str(k["last_used_at"] or "")[:19])  # fmt: skip
    err.print(table)


@app.command()
@command
async def revoke(name: str = typer.Argument(..., help="The key's name."), as_json: bool = JSON_OPTION) -> None:
    """Revoke a key; the API refuses it within a second (403)."""
    from uoom import apikeys

    async with _conn() as conn:
        await apikeys.revoke(conn, name)
    if as_json:
        emit_json({"revoked": name})
    else:
        err.print(f"key '{name}' revoked")
