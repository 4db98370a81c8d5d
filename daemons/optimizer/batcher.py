"""Micro-batching: requests that arrive within a few milliseconds are solved in ONE CP-SAT model,
in a worker thread so the event loop keeps accepting requests meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from daemons.background import Background
from uoom.assignment import Assignment, Channel, Order, Result, Weights, solve

SolveInputs = Callable[[], Awaitable[tuple[list[Channel], Weights]]]


@dataclass
class Pending:
    orders: list[Order]
    deadline_ms: float
    done: asyncio.Future[tuple[list[Assignment], Result]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class MicroBatcher(Background):
    def __init__(
        self, inputs: SolveInputs, window_ms: float, fallback_penalty: float, on_result: Callable[[Result, int], None]
    ) -> None:
        self.inputs, self.window, self.penalty, self.on_result = inputs, window_ms / 1000, fallback_penalty, on_result
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()

    async def submit(self, orders: list[Order], deadline_ms: float) -> tuple[list[Assignment], Result]:
        pending = Pending(orders, deadline_ms)
        await self._queue.put(pending)
        return await pending.done

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self.window > 0:
                await asyncio.sleep(self.window)
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._solve(batch)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error, none hangs
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(exc)

    async def _solve(self, batch: list[Pending]) -> None:
        channels, weights = await self.inputs()
        orders = [o for p in batch for o in p.orders]
        deadline = min(p.deadline_ms for p in batch)
        result = await asyncio.to_thread(solve, orders, channels, weights, deadline, self.penalty)
        self.on_result(result, len(batch))
        start = 0
        for p in batch:
            mine = list(result.assignments[start : start + len(p.orders)])
            start += len(p.orders)
            if not p.done.done():
                p.done.set_result((mine, result))
