"""How large a number the order store's columns hold (uoom/migrations), in one place.

The API's request models and the optimizer's contract bound their numbers with these, so a value
that would not fit its column is the client's 422 naming the field, never PostgreSQL's overflow
(a 500). tests/integration/test_column_bounds.py holds each one to the migrated schema, and fails
when a numeric column of the tables a request writes has no bound here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Numeric:
    """`numeric(precision, scale)`: at most precision - scale digits before the point."""

    precision: int
    scale: int

    @property
    def largest(self) -> Decimal:
        return Decimal(10) ** (self.precision - self.scale) - Decimal(1).scaleb(-self.scale)


@dataclass(frozen=True, slots=True)
class Integer:
    """`smallint`, `integer` or `bigint`: a signed integer of `bits`."""

    bits: int

    @property
    def largest(self) -> int:
        return 2 ** (self.bits - 1) - 1


Column = Numeric | Integer

ORDER_TOTAL = Numeric(10, 2)
DELIVERY_COST = Numeric(10, 2)
ETA_SECONDS = Integer(32)
VERSION = Integer(32)
HTTP_STATUS = Integer(32)

# (table, column) -> its type: every number a request can make the API write
COLUMNS: dict[tuple[str, str], Column] = {
    ("orders", "total"): ORDER_TOTAL,
    ("orders", "delivery_cost"): DELIVERY_COST,
    ("orders", "eta_seconds"): ETA_SECONDS,
    ("orders", "version"): VERSION,
    ("outbox_events", "aggregate_version"): VERSION,
    ("outbox_events", "position"): Integer(64),
    ("outbox_events", "attempts"): Integer(32),
    ("idempotency_keys", "status_code"): HTTP_STATUS,
}
