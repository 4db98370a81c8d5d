"""`uoom seed demo`: restaurants and channels so a fresh platform has something to work with."""

from __future__ import annotations

from commands._context import current
from commands._output import JSON_OPTION, command, emit_json, err, group

app = group("Load demo data.")


@app.command()
@command
async def demo(as_json: bool = JSON_OPTION) -> None:
    """Load 8 delivery channels and 15 restaurants in five city hubs: only those missing.

    The synthetic day's four bundling channels (own-bikes, own-cars, ebike-coop, crowd-gig) are
    inserted with `bundles` on: their couriers may carry two orders of one restaurant.

    A channel or restaurant that exists already is kept as it is, also when an operator changed
    it (`uoom channels set`, a disabled channel); what was kept, and changed, is reported.
    """
    from dataclasses import asdict

    from uoom import demo as demo_data

    async with current().postgres() as conn:
        seeded = await demo_data.load(conn)
    if as_json:
        emit_json({kind: asdict(s) for kind, s in seeded.items()}
                  | {"restaurantIds": [str(r[0]) for r in demo_data.restaurants()]})  # fmt: skip
        return
    for kind, s in seeded.items():
        changed = f" ({len(s.changed)} changed by an operator, left so: {', '.join(s.changed)})" if s.changed else ""
        err.print(f"{kind}: inserted {len(s.inserted)}, kept {len(s.kept)} existing{changed}")
