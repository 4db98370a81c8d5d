"""Micro-batching with the pure solver: concurrent requests become one model."""

from __future__ import annotations

import asyncio

from daemons.optimizer.batcher import MicroBatcher
from uoom.assignment import Channel, Delivery, Result, Weights
from uoom.live_channels import LiveView

CHANNELS = [
    Channel("near", "Near", "own_fleet", 3, 3.0, 0.6, 15, 6, 4, 0.95),
    Channel("far", "Far", "partner", 50, 6.5, 1.1, 18, 10, 10, 0.88),
]


def order(i: int) -> Delivery:
    return Delivery(f"o{i}", (40.75, -73.98), (40.75 + 0.001 * i, -73.98), 20.0)


async def test_concurrent_requests_are_solved_in_one_model_and_split_back() -> None:
    solves: list[tuple[int, int]] = []

    async def inputs() -> LiveView:
        return LiveView(tuple(CHANNELS), Weights(), (), redis_ok=True)

    def record(result: Result, requests: int) -> None:
        solves.append((len(result.assignments), requests))

    batcher = MicroBatcher(inputs, window_ms=20, fallback_penalty=25.0, on_result=record)
    batcher.start()
    try:
        answers = await asyncio.gather(*(batcher.submit([order(i)], 50) for i in range(5)))
    finally:
        await batcher.stop()
    assert solves == [(5, 5)]
    assert [a[0][0].order_id for a in answers] == [f"o{i}" for i in range(5)]
    # One model: the 3 slots of "near" are shared by the batch, never over-filled.
    assert sum(1 for a in answers if a[0][0].channel_id == "near") <= 3


async def test_a_failing_solve_fails_every_waiting_request_instead_of_hanging() -> None:
    async def broken() -> LiveView:
        raise RuntimeError("registry unavailable")

    batcher = MicroBatcher(broken, window_ms=1, fallback_penalty=25.0, on_result=lambda r, n: None)
    batcher.start()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(batcher.submit([order(i)], 50) for i in range(3)), return_exceptions=True), 5
        )
    finally:
        await batcher.stop()
    assert all(isinstance(r, RuntimeError) for r in results)
