"""What `uoom bench` sends: order creations (POST /api/orders), status reads
(GET /api/orders/{id}/status) of orders created first, or both at once, each an open loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from uoom import demo
from uoom.loadgen.openloop import OnProgress, Run, run

SCENARIOS = ("orders", "status", "mixed")
SETUP_CONCURRENCY = 10


def order_body(i: int) -> dict[str, Any]:
    """The i-th order: a demo restaurant, a delivery a kilometre or so away, 1-3 items."""
    restaurants = demo.restaurants()
    rid, _, lat, lon = restaurants[i % len(restaurants)]
    return {
        "customerId": str(uuid.UUID(int=i % 500 + 1)),
        "restaurantId": str(rid),
        "items": [{"itemId": f"i{i % 7}", "name": "Pizza", "quantity": 1 + i % 3, "unitPrice": "12.50"}],
        "deliveryAddress": {"street": "1 Main St", "city": "New York", "postalCode": "10001",
                            "latitude": lat + 0.01 * ((i % 5) - 2), "longitude": lon + 0.01 * ((i % 3) - 1)},
    }  # fmt: skip


@dataclass
class Target:
    url: str  # the API's base URL, without a trailing slash
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Plan:
    scenario: str
    rate: float
    seconds: float
    status_share: float = 0.8  # mixed: the share of the rate that reads status
    orders: int = 100  # status, mixed: orders created before the run, whose status is read


@dataclass
class Outcome:
    runs: list[Run]
    created: list[str] = field(default_factory=list)  # every order a 201 answered, set-up included


async def execute(session: aiohttp.ClientSession, target: Target, plan: Plan, on_progress: OnProgress) -> Outcome:
    """The plan's open loops (two side by side for `mixed`), after creating the orders to read."""
    outcome = Outcome(runs=[])
    if plan.scenario != "orders":
        outcome.created += await create_orders(session, target, plan.orders)
        if not outcome.created:
            raise RuntimeError("no order could be created to read the status of")
    reading = list(outcome.created)
    creating = {"orders": plan.rate, "status": 0.0, "mixed": plan.rate * (1 - plan.status_share)}[plan.scenario]
    status_rate = plan.rate - creating
    loops = []
    if creating > 0:
        loops.append(
            run(session, "create POST /api/orders", creating, plan.seconds, _creates(target),
                ok=lambda s: s == 201, on_response=_collect(outcome.created), on_progress=on_progress)
        )  # fmt: skip
    if status_rate > 0:
        loops.append(
            run(session, "status GET /api/orders/{id}/status", status_rate, plan.seconds, _reads(target, reading),
                on_progress=on_progress)
        )  # fmt: skip
    outcome.runs = list(await asyncio.gather(*loops))
    return outcome


def _creates(target: Target) -> Callable[[int], tuple[str, str, dict[str, Any]]]:
    start = uuid.uuid4().int % 1_000_000  # each run's orders differ from the last run's

    def make(i: int) -> tuple[str, str, dict[str, Any]]:
        return "POST", f"{target.url}/api/orders", {"json": order_body(start + i), "headers": target.headers}

    return make


def _reads(target: Target, ids: list[str]) -> Callable[[int], tuple[str, str, dict[str, Any]]]:
    def make(i: int) -> tuple[str, str, dict[str, Any]]:
        return "GET", f"{target.url}/api/orders/{ids[i % len(ids)]}/status", {"headers": target.headers}

    return make


def _collect(into: list[str]) -> Callable[[int, int, bytes], None]:
    def note(_: int, status: int, body: bytes) -> None:
        if status == 201:
            into.append(str(orjson.loads(body)["id"]))

    return note


async def create_orders(session: aiohttp.ClientSession, target: Target, count: int) -> list[str]:
    """`count` orders, a few at a time (closed loop: this is set-up, not the measurement)."""
    created: list[str] = []
    start = uuid.uuid4().int % 1_000_000
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate, session.post(f"{target.url}/api/orders", json=order_body(start + i),
                                      headers=target.headers) as response:  # fmt: skip
            body = await response.read()
            if response.status == 201:
                created.append(str(orjson.loads(body)["id"]))

    await asyncio.gather(*(one(i) for i in range(count)))
    return created
