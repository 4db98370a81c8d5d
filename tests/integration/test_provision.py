"""The read-model table and the topics, read back from DynamoDB (API) and Kafka."""

from __future__ import annotations

import uuid

from aiokafka.admin import AIOKafkaAdminClient

from uoom.config import Settings
from uoom.provision import ensure_status_table, ensure_topics
from uoom.stores.aws import dynamodb_client


async def test_status_table_matches_the_seed_and_is_created_once(stack, settings: Settings) -> None:
    custom = settings.model_copy(update={"dynamodb_table": f"uoom-test-{uuid.uuid4().hex[:8]}"})
    assert await ensure_status_table(custom) != []
    assert await ensure_status_table(custom) == []
    async with dynamodb_client(custom) as client:
        table = (await client.describe_table(TableName=custom.dynamodb_table))["Table"]
        ttl = (await client.describe_time_to_live(TableName=custom.dynamodb_table))["TimeToLiveDescription"]
        await client.delete_table(TableName=custom.dynamodb_table)
    assert table["KeySchema"] == [{"AttributeName": "orderId", "KeyType": "HASH"}]
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "CustomerStatusIndex"
    assert gsi["KeySchema"] == [
        {"AttributeName": "customerId", "KeyType": "HASH"},
        {"AttributeName": "updatedAt", "KeyType": "RANGE"},
    ]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


async def test_topics_are_created_once_and_exist(stack, settings: Settings) -> None:
    suffix = uuid.uuid4().hex[:8]
    custom = settings.model_copy(
        update={"kafka_topic": f"test.events.{suffix}", "kafka_dlq_topic": f"test.events.{suffix}.dlq"}
    )
    assert len(await ensure_topics(custom)) == 2
    assert await ensure_topics(custom) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        described = await admin.describe_topics([custom.kafka_topic])
        await admin.delete_topics([custom.kafka_topic, custom.kafka_dlq_topic])
    finally:
        await admin.close()
    assert {custom.kafka_topic, custom.kafka_dlq_topic} <= topics
    assert len(described[0]["partitions"]) == settings.kafka_partitions


async def test_project_topics_and_table_exist_after_migrate(stack, settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    assert {"uoom.order-events", "uoom.order-events.dlq"} <= topics
    async with dynamodb_client(settings) as client:
        names = (await client.list_tables())["TableNames"]
    assert "uoom-order-status" in names
