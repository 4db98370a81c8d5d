"""Idempotent provisioning of what lives outside PostgreSQL: the read-model table and the topics."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from botocore.exceptions import ClientError

from uoom.config import Settings
from uoom.stores.aws import dynamodb_client

# Exactly the seed's table: key orderId, GSI CustomerStatusIndex (customerId, updatedAt), TTL on ttl.
STATUS_TABLE_KEYS: dict[str, Any] = {
    "KeySchema": [{"AttributeName": "orderId", "KeyType": "HASH"}],
    "AttributeDefinitions": [
        {"AttributeName": "orderId", "AttributeType": "S"},
        {"AttributeName": "customerId", "AttributeType": "S"},
        {"AttributeName": "updatedAt", "AttributeType": "S"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "CustomerStatusIndex",
            "KeySchema": [
                {"AttributeName": "customerId", "KeyType": "HASH"},
                {"AttributeName": "updatedAt", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}
TTL_ATTRIBUTE = "ttl"


async def ensure_status_table(settings: Settings) -> list[str]:
    """Create the table and switch TTL on when missing; returns what was done."""
    done = []
    table = settings.dynamodb_table
    async with dynamodb_client(settings) as client:
        try:
            await client.describe_table(TableName=table)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            try:
                await client.create_table(TableName=table, **STATUS_TABLE_KEYS)
                done.append(f"created table {table}")
            except ClientError as race:  # another migrate created it first
                if race.response["Error"]["Code"] != "ResourceInUseException":
                    raise
        await client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        ttl = await client.describe_time_to_live(TableName=table)
        if ttl["TimeToLiveDescription"].get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            await client.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
            done.append(f"enabled TTL on {table}.{TTL_ATTRIBUTE}")
    return done


async def ensure_topics(settings: Settings) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [settings.kafka_topic, settings.kafka_dlq_topic]
        missing = [t for t in wanted if t not in existing]
        if missing:
            # A concurrent migrate may create them first: the goal is reached either way.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(t, settings.kafka_partitions, 1) for t in missing])
        return [f"created topic {t}" for t in missing]
    finally:
        await admin.close()


async def provision(settings: Settings) -> list[str]:
    table, topics = await asyncio.gather(ensure_status_table(settings), ensure_topics(settings))
    return table + topics
