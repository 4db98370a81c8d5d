"""An expired read-model item (its TTL attribute in the past, not yet deleted: DynamoDB deletes
expired items up to days later) is treated as missing on every read path, and refreshed from
PostgreSQL, so the reads after it are served by the read model again."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from tests.e2e.conftest import STATUS_CACHE_TTL_MS, poll
from tests.e2e.test_api_orders import create_projected, dynamodb_item
from uoom.config import Settings
from uoom.stores.aws import dynamodb_client

CACHE_LAPSE_S = STATUS_CACHE_TTL_MS / 1000 + 0.1  # the API process's own cache no longer answers


async def expire(settings: Settings, order_id: str) -> None:
    """Rewrite the order's item as it is, but expired an hour ago."""
    item, _ = await poll(lambda: dynamodb_item(settings, order_id), timeout=5)
    assert item is not None, "the create's write-behind never landed"
    item["ttl"] = {"N": str(int(time.time()) - 3600)}
    async with dynamodb_client(settings) as ddb:
        await ddb.put_item(TableName=settings.dynamodb_table, Item=item)


async def refreshed(settings: Settings, order_id: str) -> dict[str, Any] | None:
    """The item, once it lives again (TTL in the future)."""

    async def alive() -> dict[str, Any] | None:
        item = await dynamodb_item(settings, order_id)
        return item if item and int(item["ttl"]["N"]) > time.time() else None

    item, _ = await poll(alive, timeout=3)
    return item


async def test_an_expired_item_read_by_status_is_answered_from_postgresql_and_refreshed(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    order = await create_projected(client)
    await expire(settings, order["id"])
    await asyncio.sleep(CACHE_LAPSE_S)
    status = (await client.get(f"/api/orders/{order['id']}/status")).json()
    assert (status["source"], status["version"]) == ("postgres", 1)
    item = await refreshed(settings, order["id"])
    assert item is not None, "the expired item was never refreshed: every read goes to PostgreSQL"
    assert item["version"]["N"] == "1"
    await asyncio.sleep(CACHE_LAPSE_S)
    assert (await client.get(f"/api/orders/{order['id']}/status")).json()["source"] == "dynamodb"


async def test_an_expired_item_read_in_a_batch_is_answered_from_postgresql_and_refreshed(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    expired, fresh = (await create_projected(client))["id"], (await create_projected(client))["id"]
    await expire(settings, expired)
    answer = (await client.post("/api/orders/status:batch", json={"orderIds": [expired, fresh]})).json()
    assert {o["orderId"]: o["source"] for o in answer["orders"]} == {expired: "postgres", fresh: "dynamodb"}
    assert answer["notFound"] == []
    assert await refreshed(settings, expired) is not None, "the expired item was never refreshed"


async def test_an_expired_item_stays_in_the_customers_listing_and_is_refreshed(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    customer = uuid.uuid4()
    older, newer = [(await create_projected(client, customer_id=customer))["id"] for _ in range(2)]
    await expire(settings, older)
    listed = (await client.get(f"/api/customers/{customer}/orders")).json()["orders"]
    assert [(o["orderId"], o["source"]) for o in listed] == [(newer, "dynamodb"), (older, "postgres")]
    assert await refreshed(settings, older) is not None, "the expired item was never refreshed"
    listed = (await client.get(f"/api/customers/{customer}/orders")).json()["orders"]
    assert [(o["orderId"], o["source"]) for o in listed] == [(newer, "dynamodb"), (older, "dynamodb")]


async def test_an_order_changed_while_its_item_was_expired_is_refreshed_to_the_new_version(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    order = await create_projected(client)
    await expire(settings, order["id"])
    patched = await client.patch(f"/api/orders/{order['id']}/status", json={"status": "CONFIRMED"},
                                 headers={"If-Match": '"1"'})  # fmt: skip
    assert patched.status_code == 200
    item = await refreshed(settings, order["id"])
    assert item is not None and (item["status"]["S"], item["version"]["N"]) == ("CONFIRMED", "2")
