"""The read model refusing or hanging, for one API process: every read on a request path answers
within its deadline from PostgreSQL (status, batch, the customer listing and its cursor), and the
read model is used again once it answers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DynamoDBServer, TcpProxy, create_key, run_api
from tests.e2e.test_api_orders import create, create_projected, patch
from uoom.config import Settings
from uoom.provision import ensure_status_table

# The API's request deadline stays at its default (3 s); reads must answer well inside it.
READ_MODEL_TIMEOUT_MS = 200
WITHIN_S = 1.5


@pytest.fixture
def proxied_dynamodb(dynamodb_server: DynamoDBServer, proxy_factory: Any, settings: Settings, demo: None,
                     tmp_path: Path) -> Iterator[Any]:  # fmt: skip
    """A DynamoDB server of this test's own behind a TCP relay the test can freeze, and an API process
    reading it through the relay with the in-process status cache off."""
    dynamodb_server.start()
    asyncio.run(ensure_status_table(settings.model_copy(update={"dynamodb_endpoint": dynamodb_server.endpoint})))
    proxy: TcpProxy = proxy_factory(("127.0.0.1", dynamodb_server.port))
    endpoint = f"http://{proxy.address}"
    timeout = str(READ_MODEL_TIMEOUT_MS)
    with run_api(tmp_path, "ddb-hang", UOOM_STATUS_CACHE_TTL_MS="0", DYNAMODB_ENDPOINT=endpoint,
                 UOOM_DYNAMODB_ENDPOINT=endpoint, UOOM_READ_MODEL_TIMEOUT_MS=timeout) as api:  # fmt: skip
        yield api, dynamodb_server, proxy


async def timed_get(client: httpx.AsyncClient, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.get(path, **kwargs)
    return response, time.monotonic() - started


async def read_everything(client: httpx.AsyncClient, customer: uuid.UUID, orders: list[dict[str, Any]],
                          source: str) -> None:  # fmt: skip
    """Status, batch and the paged listing, each answered in time and from `source`."""
    for order in orders:
        status, took = await timed_get(client, f"/api/orders/{order['id']}/status")
        assert status.status_code == 200, status.text
        assert status.json()["source"] == source and took < WITHIN_S, (status.json(), took)
    started = time.monotonic()
    batch = await client.post("/api/orders/status:batch", json={"orderIds": [o["id"] for o in orders]})
    assert batch.status_code == 200 and time.monotonic() - started < WITHIN_S, batch.text
    assert {o["source"] for o in batch.json()["orders"]} == {source}
    listed: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page, took = await timed_get(client, f"/api/customers/{customer}/orders", params=params)
        assert page.status_code == 200, page.text
        assert took < WITHIN_S, took
        assert {o["source"] for o in page.json()["orders"]} <= {source}
        listed += [o["orderId"] for o in page.json()["orders"]]
        if not page.json()["nextCursor"]:
            break
        params["cursor"] = page.json()["nextCursor"]
    # newest change first: the one changed last (CONFIRMED) leads
    assert listed == [orders[-1]["id"], *[o["id"] for o in reversed(orders[:-1])]], listed


async def test_reads_answer_from_postgres_within_their_deadline_while_dynamodb_hangs_or_refuses(
    proxied_dynamodb: Any, settings: Settings
) -> None:
    api, dynamodb, proxy = proxied_dynamodb
    key = (await create_key(settings, "ddb-hang"))[1]
    customer = uuid.uuid4()
    async with api.client(key) as client:
        own = settings.model_copy(update={"dynamodb_endpoint": dynamodb.endpoint})
        orders = [await create_projected(client, own, customer_id=customer) for _ in range(4)]
        await asyncio.sleep(0.01)  # updatedAt strictly after every create
        changed = await patch(client, orders[0]["id"], "CONFIRMED", 1)
        assert changed.status_code == 200, changed.text
        orders = [*orders[1:], changed.json()]
        await read_everything(client, customer, orders, "dynamodb")

        proxy.freeze()  # DynamoDB accepts connections and never answers
        await read_everything(client, customer, orders, "postgres")
        await read_everything(client, customer, orders, "postgres")  # also past the 1 s pause

        proxy.cut()
        dynamodb.kill()  # ... and now refuses
        await read_everything(client, customer, orders, "postgres")
        started = time.monotonic()
        await create(client, customer_id=uuid.uuid4())
        assert time.monotonic() - started < WITHIN_S

        dynamodb.start()  # back, with the table and items it had before? no: empty, as after a restart
        proxy.start()
        await ensure_status_table(settings.model_copy(update={"dynamodb_endpoint": dynamodb.endpoint}))
        await asyncio.sleep(1.1)  # the pause after the last failure ends
        status = await client.get(f"/api/orders/{orders[0]['id']}/status")
        assert status.json()["source"] == "postgres"  # missing: read from PostgreSQL, backfilled
        await asyncio.sleep(0.5)
        status = await client.get(f"/api/orders/{orders[0]['id']}/status")
        assert status.json()["source"] == "dynamodb", status.json()


async def test_a_listing_cursor_made_up_of_a_non_time_or_a_non_uuid_is_a_400(
    proxied_dynamodb: Any, settings: Settings
) -> None:
    import base64

    import orjson

    api, _, _ = proxied_dynamodb
    key = (await create_key(settings, "ddb-cursor"))[1]
    customer = str(uuid.uuid4())
    async with api.client(key) as client:
        for updated, order_id in (("yesterday", str(uuid.uuid4())), ("2026-11-30T10:00:00.000000Z", "x"),
                                  ("2026-11-30T10:00:00", str(uuid.uuid4()))):  # fmt: skip
            raw = {"customerId": {"S": customer}, "updatedAt": {"S": updated}, "orderId": {"S": order_id}}
            cursor = base64.urlsafe_b64encode(orjson.dumps(raw)).decode()
            response = await client.get(f"/api/customers/{customer}/orders", params={"cursor": cursor})
            assert response.status_code == 400, (updated, order_id, response.text)
