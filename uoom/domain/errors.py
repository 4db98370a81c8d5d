"""Why an order use case refused: raised by the domain and the services, never by a store.

Each error carries the facts a caller needs to answer (the current version, the allowed next
states); turning them into an HTTP problem is the API's business (daemons/api/problems.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from uoom.domain.orders import OrderStatus


class OrderError(Exception):
    """A request about an order that the rules refuse; nothing was written."""


class OrderNotFound(OrderError):
    def __init__(self, order_id: UUID) -> None:
        self.order_id = order_id
        super().__init__(f"no order {order_id}")


class VersionConflict(OrderError):
    """The caller saw another version of the order than the one stored (optimistic locking)."""

    def __init__(self, order_id: UUID, expected: int, current: int) -> None:
        self.order_id, self.expected, self.current = order_id, expected, current
        super().__init__(f"order is at version {current}, not {expected}; re-read it")


class IllegalTransition(OrderError):
    def __init__(self, current: OrderStatus, wanted: OrderStatus, allowed: list[OrderStatus]) -> None:
        self.current, self.wanted, self.allowed = current, wanted, allowed
        names = ", ".join(allowed) or "none (final state)"
        super().__init__(f"cannot go from {current} to {wanted}; allowed next: {names}")


class UnknownRestaurant(OrderError):
    def __init__(self, restaurant_id: UUID) -> None:
        self.restaurant_id = restaurant_id
        super().__init__(f"no active restaurant {restaurant_id}")


class IdempotencyConflict(OrderError):
    """An idempotency key came back with another request body than the first time."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request body")
