"""Many version-guarded read-model writes in one transaction (what the projector sends), against
the stack's DynamoDB: each item's own condition decides, whatever the others in the request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.relay_support import snapshot
from uoom.config import Settings
from uoom.stores.aws import dynamodb_client
from uoom.stores.readmodel import TRANSACTION_LIMIT, put_all_if_newer, put_if_newer


async def versions(settings: Settings, ids: list[str]) -> dict[str, int]:
    held = {}
    async with dynamodb_client(settings) as ddb:
        for order_id in ids:
            item = (await ddb.get_item(TableName=settings.dynamodb_table, Key={"orderId": {"S": order_id}})).get("Item")
            if item:
                held[order_id] = int(item["version"]["N"])
    return held


@pytest.fixture
async def ddb(stack: Any, settings: Settings) -> AsyncIterator[Any]:
    async with dynamodb_client(settings) as client:
        yield client


async def test_new_and_newer_versions_are_written_and_an_older_one_never_replaces_a_newer(
    ddb: Any, settings: Settings
) -> None:
    fresh, older, same, newer = (uuid.uuid4() for _ in range(4))
    assert await put_if_newer(ddb, settings, snapshot(older, 1))
    assert await put_if_newer(ddb, settings, snapshot(same, 3))
    assert await put_if_newer(ddb, settings, snapshot(newer, 7))
    batch = [snapshot(fresh, 1), snapshot(older, 2), snapshot(same, 3), snapshot(newer, 4)]
    outcome = await put_all_if_newer(ddb, settings, batch)
    assert outcome == {str(fresh): "applied", str(older): "applied", str(same): "stale", str(newer): "stale"}
    held = await versions(settings, [str(o) for o in (fresh, older, same, newer)])
    assert held == {str(fresh): 1, str(older): 2, str(same): 3, str(newer): 7}


async def test_more_orders_than_one_transaction_takes_are_all_written(ddb: Any, settings: Settings) -> None:
    ids = [uuid.uuid4() for _ in range(TRANSACTION_LIMIT + 30)]
    taken = ids[TRANSACTION_LIMIT + 5]  # a newer version already there, in the second request
    assert await put_if_newer(ddb, settings, snapshot(taken, 9))
    outcome = await put_all_if_newer(ddb, settings, [snapshot(o, 2) for o in ids])
    assert outcome == {str(o): ("stale" if o == taken else "applied") for o in ids}
    held = await versions(settings, [str(o) for o in ids])
    assert held == {str(o): (9 if o == taken else 2) for o in ids}
