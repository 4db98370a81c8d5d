"""`uoom seed demo`: restaurants and channels so a fresh platform has something to work with."""

from __future__ import annotations

from commands._context import current
from commands._output import JSON_OPTION, command, emit_json, err, group

app = group("Load demo data.")


@app.command()
@command
async def demo(as_json: bool = JSON_OPTION) -> None:
    """Load (or refresh) 8 delivery channels and 15 restaurants in five city hubs."""
    from uoom import demo as demo_data

    async with current().postgres() as conn:
        counts = await demo_data.load(conn)
    if as_json:
        emit_json({**counts, "restaurantIds": [str(r[0]) for r in demo_data.restaurants()]})
    else:
        err.print(f"loaded {counts['channels']} channels and {counts['restaurants']} restaurants")
