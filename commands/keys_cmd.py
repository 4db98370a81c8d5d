"""`uoom keys create|list|revoke`: API keys, stored hashed; `create` prints the key once."""

from __future__ import annotations

import shlex

import typer

from commands._confirm import YES_OPTION, confirm
from commands._context import current
from commands._output import JSON_OPTION, command, emit_json, err, group, render

app = group("API keys for the order API.")
TIMES = ("created_at", "revoked_at", "last_used_at")


@app.command()
@command
async def create(name: str = typer.Argument(..., help="Who the key is for."), as_json: bool = JSON_OPTION) -> None:
    """Create a key and print it once, on its own line on stdout (it cannot be shown again)."""
    from uoom import apikeys

    async with current().postgres() as conn:
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

    async with current().postgres() as conn:
        keys = await apikeys.list_keys(conn)
    if not as_json:
        keys = [{**k, "prefix": k["prefix"] + "…"} | {c: _minute(k[c]) for c in TIMES} for k in keys]
    render(keys, ("name", "prefix", *TIMES), as_json, headers={"last_used_at": "last used"})


def _minute(value: object) -> str:
    return str(value or "")[:19]


@app.command()
@command
async def revoke(
    name: str = typer.Argument(..., help="The key's name."), yes: bool = YES_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Revoke a key; every API process refuses it at once (403: announced through Redis; within a
    second by the API's key cache if Redis is down). For good: a revoked key cannot be restored.
    Names the key (prefix, created, last used) and asks first (--yes to skip, required without a
    terminal: exit 2 otherwise)."""
    from uoom import apikeys

    async with current().postgres() as conn:
        key = await apikeys.find(conn, name)
        if key is not None and key["revoked_at"] is None:  # else revoke() says what is wrong
            used = f"last used {_minute(key['last_used_at'])}" if key["last_used_at"] else "never used"
            confirm(
                f"revoke key '{name}'",
                yes,
                losses=[f"key '{name}' ({key['prefix']}…), created {_minute(key['created_at'])}, {used}: "
                        "clients using it get 403 at once; a revoked key cannot be restored"],
                again=f"uoom keys revoke {shlex.quote(name)}",
            )  # fmt: skip
        digest = await apikeys.revoke(conn, name)
    await _announce(digest)
    if as_json:
        emit_json({"revoked": name})
    else:
        err.print(f"key '{name}' revoked")


async def _announce(digest: str) -> None:
    """Revoked in PostgreSQL already; Redis only makes it immediate, so its outage is a warning."""
    from redis.exceptions import RedisError

    from uoom import apikeys
    from uoom.errors import UoomError

    try:
        async with current().redis() as redis:
            await apikeys.announce_revoked(redis, digest)
    except (UoomError, RedisError, OSError) as exc:
        err.print(f"warning: could not announce the revocation ({exc}); API processes refuse the key "
                  "within a second as their key cache renews")  # fmt: skip
