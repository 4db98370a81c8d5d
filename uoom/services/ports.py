"""What the use cases need from outside the core, as protocols: the entrypoint that runs them
provides the real thing (daemons/api: the optimizer client, the cached read model), a unit test a
fake. The unit of work's protocol lives beside its PostgreSQL form (uoom/stores/unit_of_work.py)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from typing import Protocol

from uoom.domain.orders import Order


class Choice(Protocol):
    """The channel picked for a new order."""

    @property
    def channel_id(self) -> str | None: ...
    @property
    def cost(self) -> Decimal | float | None: ...
    @property
    def eta_seconds(self) -> int | None: ...
    @property
    def source(self) -> str: ...
    # the optimizer's trip (a bundling channel; None: no trip, or a fallback path), the co-rider it
    # intended (informational: the trips row decides) and seconds from now to the trip's pickup
    @property
    def trip_id(self) -> str | None: ...
    @property
    def co_rider_id(self) -> str | None: ...
    @property
    def pickup_in_s(self) -> float | None: ...
    # the co-rider's share (dollars) and seconds from now to its delivery in this trip: what a join
    # writes onto the open trip's first rider (None: keep its own)
    @property
    def co_rider_cost(self) -> Decimal | float | None: ...
    @property
    def co_rider_eta_seconds(self) -> int | None: ...


class Assigner(Protocol):
    async def choose(self, order_id: str, pickup: tuple[float, float], dropoff: tuple[float, float],
                     value: Decimal, ready_in_s: float, restaurant_id: str | None = None) -> Choice: ...  # fmt: skip


class ReadModel(Protocol):
    """The read side (status cache, DynamoDB/DAX). Neither write may fail the use case."""

    def created(self, order: Order) -> None:
        """A new order: cached at once; its read-model item is the projector's to write."""

    async def write_through(self, order: Order) -> bool:
        """A changed order: written before the answer, so the next read shows it (bounded wait)."""

    def changed_aside(self, order: Order) -> None:
        """An order changed by another's request (a join re-prices its trip's first rider): cached
        at once; its item is the projector's to write, from the order's own event."""


Stage = Callable[[str], AbstractContextManager[object]]  # times one step of a use case, by name


def untimed(_: str) -> AbstractContextManager[object]:
    return nullcontext()
