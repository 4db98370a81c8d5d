"""`uoom seed demo`: restaurants and channels so a fresh platform has something to work with."""

from __future__ import annotations

import typer

from commands._output import JSON_OPTION, command, emit_json, err

app = typer.Typer(help="Load demo data.", no_args_is_help=True)


@app.command()
@command
async def demo(as_json: bool = JSON_OPTION) -> None:
    """Load (or refresh) 8 delivery channels and 15 restaurants in five city hubs."""
    import asyncpg

    from uoom import demo as demo_data
    from uoom.config import Settings

    conn = await asyncpg.connect(Settings().database_url.get_secret_value())
    try:
        counts = await demo_data.load(conn)
    finally:
        await conn.close()
    if as_json:
        emit_json({**counts, "restaurantIds": [str(r[0]) for r in demo_data.restaurants()]})
    else:
        err.print(f"loaded {counts['channels']} channels and {counts['restaurants']} restaurants")
