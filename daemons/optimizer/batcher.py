"""Micro-batching: requests that arrive within a few milliseconds are solved in ONE assignment model (min-cost flow),
in a worker thread so the event loop keeps accepting requests meanwhile (a batch of a few orders,
the usual case, is solved on the loop: it takes less than the hop to a thread).

Bounded, and no solving for nobody: at most `max_queued_orders` orders wait for a solve, and a
request beyond that is refused at once (`QueueFull`, a quick 503) instead of queueing behind work
that cannot finish in time. A request whose caller has hung up (its `submit` was cancelled) is
dropped before the solve. One whose deadline passed while it waited gets no solver time either:
the greedy rule answers it at once (status FALLBACK, as when the solver runs out of time). The others
share one model, with what is left of the shortest deadline, counted from each one's arrival.
With a `TripPlanner` (trips.py), a batch whose orders name their restaurant, while a live channel
bundles, is solved with two-order trips; every other batch, and a late one, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from daemons.background import Background
from daemons.optimizer.trips import TripPlanner
from uoom.assignment import Assignment, Delivery, Result, solve
from uoom.assignment.model import Ride
from uoom.live_channels import LiveView

LiveInputs = Callable[[], Awaitable[LiveView]]
Shed = Callable[[str, int], None]  # (full | gone | late, orders): what was not given to the solver
INLINE_ORDERS = 8  # batches this small are solved on the event loop (about 1 ms at most)


class QueueFull(Exception):
    """Too many orders already wait for a solve."""


class Answer(NamedTuple):
    """A request's assignments (in its order), the batch's result, and its orders' trips by id."""

    assignments: list[Assignment]
    result: Result
    rides: dict[str, Ride]


@dataclass
class Pending:
    deliveries: list[Delivery]
    deadline_ms: float
    restaurants: list[str | None] | None = None  # per delivery; None: no restaurant given
    arrived: float = field(default_factory=lambda: asyncio.get_running_loop().time())
    done: asyncio.Future[Answer] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def left_ms(self, now: float) -> float:
        return self.deadline_ms - (now - self.arrived) * 1000


class MicroBatcher(Background):
    def __init__(self, inputs: LiveInputs, window_ms: float, fallback_penalty: float,
                 on_result: Callable[[Result, int], None], max_queued_orders: int = 2000,
                 on_shed: Shed = lambda reason, orders: None, trips: TripPlanner | None = None) -> None:  # fmt: skip
        self.inputs, self.window, self.penalty, self.on_result = inputs, window_ms / 1000, fallback_penalty, on_result
        self.max_queued, self.on_shed, self.trips = max_queued_orders, on_shed, trips
        self.queued = 0  # orders submitted and not yet taken into a solve
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()

    async def submit(self, deliveries: list[Delivery], deadline_ms: float,
                     restaurants: list[str | None] | None = None) -> Answer:  # fmt: skip
        """This request's assignments (in its order), the result of the batch it was solved in, and
        its orders' trips. Cancelling the call (the caller went away) takes the request out of its batch."""
        if self.queued + len(deliveries) > self.max_queued:
            self.on_shed("full", len(deliveries))
            raise QueueFull(f"{self.queued} orders wait for a solve (at most {self.max_queued})")
        pending = Pending(deliveries, deadline_ms, restaurants)
        self.queued += len(deliveries)
        self._queue.put_nowait(pending)
        return await pending.done  # a cancelled caller cancels `done`, which the batch then skips

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self.window > 0:
                await asyncio.sleep(self.window)
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self.queued -= sum(len(p.deliveries) for p in batch)
            try:
                await self._solve(batch)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error, none hangs
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(exc)

    async def _solve(self, batch: list[Pending]) -> None:
        live = await self.inputs()
        now = asyncio.get_running_loop().time()
        waiting = []
        for p in batch:
            if p.done.done():  # cancelled: its caller hung up
                self.on_shed("gone", len(p.deliveries))
            else:
                waiting.append(p)
        late = [p for p in waiting if p.left_ms(now) <= 0]
        for p in late:
            self.on_shed("late", len(p.deliveries))
        timely = [p for p in waiting if p.left_ms(now) > 0]
        if late:  # a deadline of 0: the reduction and the greedy rule, never the solver
            await self._answer(late, live, 0.0)
        if timely:
            await self._answer(timely, live, min(p.left_ms(now) for p in timely))

    async def _answer(self, batch: list[Pending], live: LiveView, deadline_ms: float) -> None:
        deliveries = [d for p in batch for d in p.deliveries]
        restaurants = [r for p in batch for r in (p.restaurants or [None] * len(p.deliveries))]
        inline = len(deliveries) <= INLINE_ORDERS  # ~0.2 ms a order: the hop to a thread costs more
        rides: dict[str, Ride] = {}
        if self.trips and deadline_ms > 0 and self.trips.applies(live, restaurants):
            solved = await self.trips.solve(deliveries, restaurants, live, deadline_ms, self.penalty, inline=inline)
            result, rides = solved.result, solved.rides
        elif inline:
            result = solve(deliveries, live.channels, live.weights, deadline_ms, self.penalty)
        else:
            result = await asyncio.to_thread(solve, deliveries, live.channels, live.weights, deadline_ms, self.penalty)
        self.on_result(result, len(batch))
        start = 0
        for p in batch:
            mine = list(result.assignments[start : start + len(p.deliveries)])
            start += len(p.deliveries)
            if not p.done.done():
                trips = {a.order_id: rides[a.order_id] for a in mine if a.order_id in rides}
                p.done.set_result(Answer(mine, result, trips))
