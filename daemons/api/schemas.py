"""Request and response bodies: the seed's shapes, camelCase on the wire, strict validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from uoom.domain import columns
from uoom.domain import orders as domain
from uoom.domain.orders import OrderStatus


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _storable(text: str) -> str:
    """PostgreSQL refuses NUL in text and jsonb, and a lone surrogate is not UTF-8 at all: either
    would fail the transaction (a 500); here it is the client's 422 naming the field."""
    if "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text):
        raise ValueError("must not contain NUL or unpaired surrogate characters")
    return text


Text = Annotated[str, AfterValidator(_storable)]  # every free-text field of a request body
Money = Annotated[Decimal, Field(ge=0, le=Decimal("100000"), decimal_places=2, max_digits=8)]


class Item(Body):
    item_id: Text = Field(min_length=1, max_length=100)
    name: Text = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=1000)
    unit_price: Money

    def to_line(self) -> domain.LineItem:
        return domain.LineItem(self.item_id, self.name, self.quantity, self.unit_price)


class Address(Body):
    street: Text = Field(min_length=1, max_length=200)
    city: Text = Field(min_length=1, max_length=100)
    postal_code: Text = Field(min_length=1, max_length=20)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class CreateOrder(Body):
    customer_id: UUID
    restaurant_id: UUID
    items: list[Item] = Field(
        min_length=1,
        max_length=100,
        description=f"the total (quantity x unit price) is at most {columns.ORDER_TOTAL.largest}",
    )
    delivery_address: Address
    notes: Text | None = Field(None, max_length=500)

    @field_validator("items")
    @classmethod
    def _total_fits(cls, items: list[Item]) -> list[Item]:
        """Each line may be in bounds and their sum not: it must fit `orders.total`."""
        total, largest = domain.order_total(i.to_line() for i in items), columns.ORDER_TOTAL.largest
        if total > largest:
            raise ValueError(f"the order's total, {total}, is over the most an order can hold, {largest}")
        return items

    def to_command(self) -> domain.PlaceOrder:
        a = self.delivery_address
        return domain.PlaceOrder(
            self.customer_id, self.restaurant_id, tuple(i.to_line() for i in self.items),
            domain.Address(a.street, a.city, a.postal_code, a.latitude, a.longitude), self.notes,
        )  # fmt: skip


class StatusChange(Body):
    status: OrderStatus
    reason: Text | None = Field(None, max_length=500)


class BatchStatusRequest(Body):
    order_ids: list[UUID] = Field(min_length=1, max_length=100)


TRIP = "The courier's trip on a bundling channel (one or two orders of one restaurant); null: none"
CO_RIDER = "The other order of its two-order trip; null: it rides alone (so far)"


class OrderStatusView(Body):
    order_id: UUID
    status: OrderStatus
    version: int
    updated_at: str
    channel_id: str | None = None
    estimated_delivery_time: str | None = None
    trip_id: UUID | None = Field(None, description=TRIP)
    co_rider_id: UUID | None = Field(None, description=CO_RIDER)
    source: str = Field(description="Where the answer came from: cache, dynamodb, dax or postgres")


class BatchStatusResponse(Body):
    orders: list[OrderStatusView]
    not_found: list[UUID]


class OrderView(Body):
    id: UUID
    customer_id: UUID
    restaurant_id: UUID
    status: OrderStatus
    items: list[Item]
    delivery_address: Address
    notes: str | None = None
    total: str
    channel_id: str | None = None
    delivery_cost: str | None = None
    eta_seconds: int | None = None
    estimated_delivery_time: str | None = None
    assignment_source: str | None = None
    created_at: str
    updated_at: str
    version: int
    trip_id: UUID | None = Field(None, description=TRIP)
    co_rider_id: UUID | None = Field(None, description=CO_RIDER)


class CustomerOrdersQuery(Body):
    """The listing's query string: an unknown parameter is a 422 naming it, as in a body."""

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=2000, description="nextCursor of the previous page")


class CustomerOrders(Body):
    orders: list[OrderStatusView]
    next_cursor: str | None = None
