"""Micro-batching: requests that arrive within a few milliseconds are solved in ONE CP-SAT model,
in a worker thread so the event loop keeps accepting requests meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from daemons.background import Background
from uoom.assignment import Assignment, Delivery, Result, solve
from uoom.live_channels import LiveView

LiveInputs = Callable[[], Awaitable[LiveView]]


@dataclass
class Pending:
    deliveries: list[Delivery]
    deadline_ms: float
    done: asyncio.Future[tuple[list[Assignment], Result]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class MicroBatcher(Background):
    def __init__(
        self, inputs: LiveInputs, window_ms: float, fallback_penalty: float, on_result: Callable[[Result, int], None]
    ) -> None:
        self.inputs, self.window, self.penalty, self.on_result = inputs, window_ms / 1000, fallback_penalty, on_result
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()

    async def submit(self, deliveries: list[Delivery], deadline_ms: float) -> tuple[list[Assignment], Result]:
        """This request's assignments (in its order), and the result of the batch it was solved in."""
        pending = Pending(deliveries, deadline_ms)
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
        live = await self.inputs()
        deliveries = [d for p in batch for d in p.deliveries]
        deadline = min(p.deadline_ms for p in batch)
        result = await asyncio.to_thread(solve, deliveries, live.channels, live.weights, deadline, self.penalty)
        self.on_result(result, len(batch))
        start = 0
        for p in batch:
            mine = list(result.assignments[start : start + len(p.deliveries)])
            start += len(p.deliveries)
            if not p.done.done():
                p.done.set_result((mine, result))
