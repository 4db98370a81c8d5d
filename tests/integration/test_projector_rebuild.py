"""The projector rebuilds a read model that came back empty: DynamoDB restarted without its data
(the table gone), the projector recreates the table and re-applies the topic, so orders with no
newer event come back too, not only those that change afterwards. Whatever comes first after the
restart brings the table back: an order's change (read before written) or a new order (written
straight away)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemons.relay import Relay
from daemons.relay.projector import Projector
from tests.integration.relay_support import (
    db,
    free_ports,
    relay_dsn,
    relay_settings,
    running,
    topic,
    until,
    write_events,
)
from uoom.config import Settings
from uoom.provision import ensure_status_table
from uoom.stack import Stack
from uoom.stores import kafka
from uoom.stores.aws import dynamodb_client

__all__ = ["relay_dsn", "topic"]  # fixtures


@pytest.fixture
async def own_dynamodb(stack: object, tmp_path: Path) -> AsyncIterator[Stack]:
    """A DynamoDB endpoint (the stack's server) of this test's own, with the status table; stopped afterwards."""
    own = Stack(Settings(home=tmp_path / "home", dynamodb_endpoint=f"http://127.0.0.1:{free_ports()}"))
    try:
        await own.up(["dynamodb"])
        await ensure_status_table(own.settings)
        yield own
    finally:
        own.down(["dynamodb"])


async def _version(settings: Settings, order: uuid.UUID) -> int | None:
    try:
        async with dynamodb_client(settings, fail_fast=True) as ddb:
            key = {"orderId": {"S": str(order)}}
            item = (await ddb.get_item(TableName=settings.dynamodb_table, Key=key)).get("Item")
    except Exception:  # noqa: BLE001 - the table is not back yet
        return None
    return int(item["version"]["N"]) if item else None


@pytest.mark.parametrize("first_after_restart", ["a change", "a new order"])
async def test_projector_recreates_the_table_and_reapplies_the_topic_after_dynamodb_restarts_empty(
    settings: Settings, relay_dsn: str, topic: str, own_dynamodb: Stack, first_after_restart: str
) -> None:
    own = own_dynamodb.settings
    cfg = relay_settings(settings, relay_dsn, topic, relay_projector=True, dynamodb_endpoint=own.dynamodb_endpoint)
    quiet, changed, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    relay = Relay(cfg)
    async with db(relay_dsn) as pool, running(relay):
        await write_events(pool, [(quiet, 1), (quiet, 2), (changed, 1)])

        async def projected() -> bool:
            return (await _version(own, quiet), await _version(own, changed)) == (2, 1)

        await until(projected, 30, every=0.3)
        own_dynamodb.down(["dynamodb"])
        await own_dynamodb.up(["dynamodb"])  # back, empty: no table, no items
        # a new order's event alone goes straight to a write, with no read that would meet the missing table
        after = (changed, 2) if first_after_restart == "a change" else (new, 1)
        await write_events(pool, [after])
        expected = {quiet: 2, changed: 1, new: None} | dict([after])

        async def rebuilt() -> bool:
            return {order: await _version(own, order) for order in expected} == expected

        await until(rebuilt, 60, every=0.5)


async def test_a_rewind_is_committed_so_that_a_rebalance_cannot_undo_it(settings: Settings, topic: str) -> None:
    """A rebalance resets a partition's position to its group's committed offset: a rewind that
    only seeks is lost when one comes before the next commit, and the table's check does not
    come again. So the rewind commits the offsets it sought (real Kafka, the projector's group)."""
    cfg = settings.model_copy(update={"kafka_topic": topic, "relay_projector_group": f"projector-{topic}"})
    sender = kafka.producer(cfg)
    await sender.start()
    try:
        for partition in range(6):
            await sender.send_and_wait(topic, b"{}", partition=partition)
    finally:
        await sender.stop()
    reader = kafka.consumer(cfg, topic, group_id=cfg.relay_projector_group)
    await reader.start()
    try:

        async def read_all() -> bool:
            await reader.getmany(timeout_ms=200)
            return len(reader.assignment()) == 6 and all([await reader.position(tp) == 1 for tp in reader.assignment()])

        await until(read_all, 30, every=0.1)
        await reader.commit()
        assert await Projector(cfg)._rewind(reader)
        committed = {tp.partition: await reader.committed(tp) for tp in reader.assignment()}
    finally:
        await reader.stop()
    assert committed == dict.fromkeys(range(6), 0)  # back to the events of the read model's lifetime
