"""Malformed requests get a 4xx problem body naming the field, never a 500, and create nothing."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import order_body
from tests.e2e.test_api_orders import create, is_problem

ITEM = {"itemId": "dumpling", "name": "Dumplings", "quantity": 1, "unitPrice": 4.5}


def items(n: int) -> Callable[[dict[str, Any]], None]:
    return lambda b: b.update(items=[dict(ITEM, itemId=f"i{i}") for i in range(n)])


def item(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda b: b["items"][0].update(changes)


def address(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda b: b["deliveryAddress"].update(changes)


def drop(*path: str | int) -> Callable[[dict[str, Any]], None]:
    def apply(b: dict[str, Any]) -> None:
        target: Any = b
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return apply


# case -> (how to spoil a valid body, the field the problem must name)
MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "customerId not a uuid": (lambda b: b.update(customerId="customer-42"), "customerId"),
    "restaurantId not a uuid": (lambda b: b.update(restaurantId="1234"), "restaurantId"),
    "unknown restaurant": (lambda b: b.update(restaurantId=str(uuid.uuid4())), "restaurantId"),
    "no items": (items(0), "items"),
    "101 items": (items(101), "items"),
    "items not a list": (lambda b: b.update(items={"itemId": "x"}), "items"),
    "quantity 0": (item(quantity=0), "items.0.quantity"),
    "quantity negative": (item(quantity=-3), "items.0.quantity"),
    "quantity fractional": (item(quantity=1.5), "items.0.quantity"),
    "price with 3 decimals": (item(unitPrice=1.234), "items.0.unitPrice"),
    "price with 3 decimals as a string": (item(unitPrice="0.001"), "items.0.unitPrice"),
    "negative price": (item(unitPrice=-1), "items.0.unitPrice"),
    "price not a number": (item(unitPrice="cheap"), "items.0.unitPrice"),
    "price NaN": (item(unitPrice="NaN"), "items.0.unitPrice"),
    "price Infinity": (item(unitPrice="Infinity"), "items.0.unitPrice"),
    "price huge": (item(unitPrice=1e300), "items.0.unitPrice"),
    "empty item name": (item(name=""), "items.0.name"),
    "item without itemId": (drop("items", 0, "itemId"), "items.0.itemId"),
    "latitude 91": (address(latitude=91), "deliveryAddress.latitude"),
    "latitude -90.5": (address(latitude=-90.5), "deliveryAddress.latitude"),
    "longitude 181": (address(longitude=181), "deliveryAddress.longitude"),
    "latitude a string": (address(latitude="north"), "deliveryAddress.latitude"),
    "no street": (drop("deliveryAddress", "street"), "deliveryAddress.street"),
    "no delivery address": (drop("deliveryAddress"), "deliveryAddress"),
    "notes too long": (lambda b: b.update(notes="n" * 501), "notes"),
    "unknown top-level field": (lambda b: b.update(tip=5), "tip"),
    "unknown item field": (item(spicy=True), "items.0.spicy"),
    "unknown address field": (address(floor=3), "deliveryAddress.floor"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_order_is_422_problem_naming_the_field(
    client: httpx.AsyncClient, db: asyncpg.Connection, case: str
) -> None:
    spoil, field = MALFORMED[case]
    body = order_body()
    body["items"] = [dict(ITEM)]
    spoil(body)
    response = await client.post("/api/orders", json=body)
    problem = is_problem(response, 422)
    assert field in [e["field"] for e in problem.get("errors", [])], problem
    assert field in problem["detail"], problem
    customer = body["customerId"]
    if case != "customerId not a uuid":
        count = await db.fetchval("SELECT count(*) FROM orders WHERE customer_id = $1", uuid.UUID(customer))
        assert count == 0


# Every free-text field of the create body: the class of input PostgreSQL cannot store.
TEXT_FIELDS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "items.0.itemId": lambda b, v: b["items"][0].update(itemId=v),
    "items.0.name": lambda b, v: b["items"][0].update(name=v),
    "deliveryAddress.street": lambda b, v: b["deliveryAddress"].update(street=v),
    "deliveryAddress.city": lambda b, v: b["deliveryAddress"].update(city=v),
    "deliveryAddress.postalCode": lambda b, v: b["deliveryAddress"].update(postalCode=v),
    "notes": lambda b, v: b.update(notes=v),
}
UNSTORABLE = {"NUL": "a\x00b", "lone surrogate": "a\udb0cb"}


@pytest.mark.parametrize("field", list(TEXT_FIELDS))
@pytest.mark.parametrize("kind", list(UNSTORABLE))
async def test_text_postgres_cannot_store_is_422_naming_the_field(client: httpx.AsyncClient, field: str,
                                                                  kind: str) -> None:  # fmt: skip
    body = order_body()
    body["items"] = [dict(ITEM)]
    TEXT_FIELDS[field](body, UNSTORABLE[kind])
    # json.dumps escapes a lone surrogate as \\udb0c, valid JSON that httpx's encoder would refuse
    json_type = {"content-type": "application/json"}
    response = await client.post("/api/orders", content=json.dumps(body), headers=json_type)
    problem = is_problem(response, 422)
    assert field in [e["field"] for e in problem["errors"]], problem
    order = await create(client)
    patch = json.dumps({"status": "CONFIRMED", "reason": UNSTORABLE[kind]})
    problem = is_problem(await client.patch(f"/api/orders/{order['id']}/status", content=patch,
                                            headers={**json_type, "If-Match": '"1"'}), 422)  # fmt: skip
    assert "reason" in [e["field"] for e in problem["errors"]], problem


async def test_body_that_is_not_json_or_not_an_object_is_422(client: httpx.AsyncClient) -> None:
    for raw in (b"{not json", b"[]", b'"order"', b"null", b""):
        response = await client.post("/api/orders", content=raw, headers={"content-type": "application/json"})
        is_problem(response, 422)


async def test_patch_with_an_unknown_status_or_extra_field_is_422_naming_it(client: httpx.AsyncClient) -> None:
    order = await create(client)
    url = f"/api/orders/{order['id']}/status"
    for body, field in (({"status": "SHIPPED"}, "status"), ({}, "status"),
                        ({"status": "CONFIRMED", "by": "me"}, "by"),
                        ({"status": "CONFIRMED", "reason": "r" * 501}, "reason")):  # fmt: skip
        problem = is_problem(await client.patch(url, json=body, headers={"If-Match": '"1"'}), 422)
        assert field in [e["field"] for e in problem["errors"]], (body, problem)
    assert (await client.get(f"/api/orders/{order['id']}/status")).json()["version"] == 1


async def test_ids_in_paths_that_are_not_uuids_are_422(client: httpx.AsyncClient) -> None:
    for path in ("/api/orders/42/status", "/api/orders/not-an-id", "/api/customers/bob/orders"):
        is_problem(await client.get(path), 422)
    problem = is_problem(await client.post("/api/orders/status:batch", json={"orderIds": ["x"]}), 422)
    assert problem["errors"][0]["field"].startswith("orderIds")


BIG_NOTES = "x" * 70_000  # the limit is UOOM_API_MAX_BODY_BYTES = 65536


async def test_body_over_the_size_limit_is_413(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    body = order_body(notes=BIG_NOTES)
    problem = is_problem(await client.post("/api/orders", json=body), 413)
    assert "65536" in problem["detail"]
    count = await db.fetchval("SELECT count(*) FROM orders WHERE customer_id = $1", uuid.UUID(body["customerId"]))
    assert count == 0


async def test_chunked_body_over_the_size_limit_is_413(client: httpx.AsyncClient) -> None:
    """No Content-Length (chunked transfer): the limit is enforced while reading."""
    raw = json.dumps(order_body(notes=BIG_NOTES)).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 8192):
            yield raw[start : start + 8192]

    response = await client.post("/api/orders", content=chunks(), headers={"content-type": "application/json"})
    is_problem(response, 413)


async def test_body_just_under_the_size_limit_is_accepted_as_far_as_size_goes(client: httpx.AsyncClient) -> None:
    body = order_body(notes="x" * 400)
    body["items"] = [copy.deepcopy(ITEM) | {"itemId": f"i{i}", "name": "n" * 150} for i in range(100)]
    assert 20_000 < len(json.dumps(body)) < 65_536
    response = await client.post("/api/orders", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["total"] == "450.00"
