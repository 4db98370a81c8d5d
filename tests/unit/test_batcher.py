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


async def _live() -> LiveView:
    return LiveView(tuple(CHANNELS), Weights(), (), redis_ok=True)


async def test_a_full_queue_refuses_at_once_a_gone_request_is_dropped_and_a_late_one_gets_no_cp_sat() -> None:
    from daemons.optimizer.batcher import QueueFull

    solves: list[tuple[list[str], str]] = []
    shed: list[tuple[str, int]] = []
    batcher = MicroBatcher(_live, window_ms=100, fallback_penalty=25.0,
                           on_result=lambda r, n: solves.append(([a.order_id for a in r.assignments], r.status)),
                           max_queued_orders=3, on_shed=lambda reason, n: shed.append((reason, n)))  # fmt: skip
    batcher.start()
    try:
        kept = asyncio.create_task(batcher.submit([order(0)], 5000))
        gone = asyncio.create_task(batcher.submit([order(1)], 5000))
        late = asyncio.create_task(batcher.submit([order(2)], 50))  # its deadline passes in the window
        await asyncio.sleep(0.01)
        try:
            await batcher.submit([order(3)], 5000)
            raise AssertionError("a fourth order fitted a queue of three")
        except QueueFull:
            pass
        gone.cancel()  # its caller hung up
        (mine, _, _), (late_mine, late_result, _) = await kept, await late
    finally:
        await batcher.stop()
    assert [a.order_id for a in mine] == ["o0"] and [a.order_id for a in late_mine] == ["o2"]
    # the late one alone, with no time (reduction and greedy only); nothing for the gone one
    assert solves[0] == (["o2"], late_result.status) and late_result.status in ("OPTIMAL", "FALLBACK")
    assert [ids for ids, _ in solves] == [["o2"], ["o0"]]
    assert sorted(shed) == [("full", 1), ("gone", 1), ("late", 1)]
    assert batcher.queued == 0
