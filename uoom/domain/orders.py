"""Order states, the legal transitions between them, and the order snapshot carried by events."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    PREPARING = "PREPARING"
    READY_FOR_PICKUP = "READY_FOR_PICKUP"
    PICKED_UP = "PICKED_UP"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.CONFIRMED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.PREPARING, S.CANCELLED}),
    S.PREPARING: frozenset({S.READY_FOR_PICKUP, S.CANCELLED}),
    S.READY_FOR_PICKUP: frozenset({S.PICKED_UP}),
    S.PICKED_UP: frozenset({S.DELIVERED, S.FAILED}),
    S.DELIVERED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}
# Orders whose channel may still change: assigned, not yet picked up.
OPEN_STATES = frozenset({S.PENDING, S.CONFIRMED, S.PREPARING, S.READY_FOR_PICKUP})
# Orders that no longer hold a channel slot.
FINISHED_STATES = frozenset({S.DELIVERED, S.CANCELLED, S.FAILED})


class IllegalTransition(Exception):
    def __init__(self, current: OrderStatus, wanted: OrderStatus) -> None:
        self.current, self.wanted = current, wanted
        self.allowed = sorted(TRANSITIONS[current])
        allowed = ", ".join(self.allowed) or "none (final state)"
        super().__init__(f"cannot go from {current} to {wanted}; allowed next: {allowed}")


def check_transition(current: OrderStatus, wanted: OrderStatus) -> None:
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(current, wanted)


CENT = Decimal("0.01")


def order_total(items: list[dict[str, Any]]) -> Decimal:
    """Sum of quantity x unit price, in Decimal, rounded half-up to the cent."""
    total = sum((Decimal(str(i["unitPrice"])) * int(i["quantity"]) for i in items), Decimal(0))
    return total.quantize(CENT, rounding=ROUND_HALF_UP)
