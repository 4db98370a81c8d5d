"""The read-model projector: Kafka consumer group -> version-guarded DynamoDB writes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemons.relay import Relay
from tests.integration.relay_support import (
    db,
    free_ports,
    relay_dsn,
    relay_settings,
    running,
    snapshot,
    topic,
    until,
    write_events,
)
from uoom.config import Settings
from uoom.provision import ensure_status_table
from uoom.stack import Stack
from uoom.stores.aws import dynamodb_client
from uoom.stores.readmodel import put_if_newer

__all__ = ["relay_dsn", "topic"]  # fixtures


async def _version(settings: Settings, order: uuid.UUID) -> int | None:
    async with dynamodb_client(settings) as ddb:
        item = (await ddb.get_item(TableName=settings.dynamodb_table, Key={"orderId": {"S": str(order)}})).get("Item")
    return int(item["version"]["N"]) if item else None


@pytest.fixture
async def orders(stack, settings) -> AsyncIterator[list[uuid.UUID]]:
    ids = [uuid.uuid4() for _ in range(3)]
    yield ids
    async with dynamodb_client(settings) as ddb:
        for order in ids:
            await ddb.delete_item(TableName=settings.dynamodb_table, Key={"orderId": {"S": str(order)}})


async def test_projector_repairs_missing_and_stale_items_and_keeps_newer_ones(
    settings, relay_dsn, topic, orders
) -> None:
    missing, stale, newer = orders
    async with dynamodb_client(settings) as ddb:
        assert await put_if_newer(ddb, settings, snapshot(stale, 1))
        assert await put_if_newer(ddb, settings, snapshot(newer, 5))
    cfg = relay_settings(settings, relay_dsn, topic, relay_projector=True)
    relay = Relay(cfg)
    async with db(relay_dsn) as pool:
        await write_events(pool, [(o, v) for v in (1, 2, 3) for o in (missing, stale)] + [(newer, 2)])
        async with running(relay):

            async def converged() -> bool:
                return (await _version(settings, missing), await _version(settings, stale)) == (3, 3)

            await until(converged, 30, every=0.2)
    assert await _version(settings, newer) == 5  # an older event never replaces a newer item
    # the projector reads first: the newer item needed no write at all
    assert relay.metrics.projected["current"] >= 1 and relay.metrics.projected["applied"] >= 2


@pytest.fixture
async def dynamodb_down(stack, tmp_path: Path) -> AsyncIterator[Stack]:
    """A DynamoDB endpoint of this test's own, not started yet; stopped afterwards."""
    own = Stack(Settings(home=tmp_path / "home", dynamodb_endpoint=f"http://127.0.0.1:{free_ports()}"))
    try:
        yield own
    finally:
        own.down(["dynamodb"])


async def test_projector_catches_up_after_a_dynamodb_outage(settings, relay_dsn, topic, dynamodb_down) -> None:
    own = dynamodb_down.settings
    cfg = relay_settings(settings, relay_dsn, topic, relay_projector=True, dynamodb_endpoint=own.dynamodb_endpoint)
    order = uuid.uuid4()
    relay = Relay(cfg)
    async with db(relay_dsn) as pool, running(relay):
        await write_events(pool, [(order, 1), (order, 2)])
        await until(lambda: relay.metrics.totals["processed"] == 2, 10)  # publishing never waits
        await until(lambda: relay.metrics.projected["errors"] >= 1, 20)  # DynamoDB down: retrying
        await dynamodb_down.up(["dynamodb"])
        await ensure_status_table(own)

        async def projected() -> bool:
            return await _version(own, order) == 2

        await until(projected, 30, every=0.3)
