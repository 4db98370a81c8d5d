"""The stores' rows of `uoom doctor`: PostgreSQL and its migrations, Redis, Kafka and the topics,
the DynamoDB table's shape, the outbox. Each is read-only and says the fix when it fails; the
caller bounds each in time (health/checks.py: bounded)."""

from __future__ import annotations

from typing import Any

from uoom.config import Settings
from uoom.health.checks import FAIL, OK, SKIP, Check, one_line, start_or_check


async def postgres(settings: Settings) -> Check:
    """Reachable, and every migration on disk applied (read-only: no schema_migrations is created)."""
    import asyncpg

    from uoom import migrate

    try:
        conn = await asyncpg.connect(settings.database_url.get_secret_value(), timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return Check("postgres", FAIL, f"not answering ({one_line(exc)})", start_or_check(settings, "database_url"))
    try:
        version = await conn.fetchval("SHOW server_version")
        applied: dict[str, str] = {}
        if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            applied = dict(await conn.fetch("SELECT version, checksum FROM schema_migrations"))
    finally:
        await conn.close()
    on_disk = migrate.load()
    pending = [m.path.name for m in on_disk if m.version not in applied]
    edited = [m.path.name for m in on_disk if applied.get(m.version, m.checksum) != m.checksum]
    unknown = sorted(set(applied) - {m.version for m in on_disk})
    if edited or unknown:
        what = ", ".join(
            [*(f"{n} edited after it was applied" for n in edited), *(f"{v} unknown here" for v in unknown)]
        )
        return Check(
            "postgres",
            FAIL,
            f"PostgreSQL {version}; migrations: {what}",
            "restore the edited files, or install the uoom version that applied them",
        )
    if pending:
        what = f"{len(pending)} migration(s) pending: {', '.join(pending)}"
        return Check("postgres", FAIL, f"PostgreSQL {version}; {what}", "run `uoom migrate up`")
    return Check("postgres", OK, f"PostgreSQL {version}; {len(on_disk)} migration(s), all applied")


async def redis(settings: Settings) -> Check:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.from_url(settings.redis_url.get_secret_value(), socket_connect_timeout=2, socket_timeout=2)
    try:
        info = await client.info("server")
    except (RedisError, OSError) as exc:
        return Check("redis", FAIL, f"not answering ({one_line(exc)})", start_or_check(settings, "redis_url"))
    finally:
        await client.aclose()
    return Check("redis", OK, f"Redis {info.get('redis_version')}")


async def kafka(settings: Settings) -> Check:
    """Both topics present with UOOM_KAFKA_PARTITIONS partitions. Reads the metadata of every topic:
    asking for one by name may create it on a broker that auto-creates topics."""
    import logging

    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a refused connection is this row's finding
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        topics = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
    except (KafkaError, OSError) as exc:
        return Check("kafka", FAIL, f"not answering ({one_line(exc)})", start_or_check(settings, "kafka_bootstrap"))
    finally:
        await admin.close()
    wanted = [settings.kafka_topic, settings.kafka_dlq_topic]
    missing = [t for t in wanted if t not in topics]
    if missing:
        return Check("kafka", FAIL, f"topic {', '.join(missing)} missing", "run `uoom migrate up` (it creates them)")
    off = [f"{t} has {topics[t]}" for t in wanted if topics[t] != settings.kafka_partitions]
    if off:
        detail = f"{'; '.join(off)} partitions, UOOM_KAFKA_PARTITIONS says {settings.kafka_partitions}"
        return Check("kafka", FAIL, detail, "set UOOM_KAFKA_PARTITIONS to what the topics have, or recreate them")
    return Check("kafka", OK, f"{' and '.join(wanted)}, {settings.kafka_partitions} partitions each")


async def dynamodb(settings: Settings) -> Check:
    """The read-model table exactly as `uoom migrate up` makes it (uoom/provision.py)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from uoom.provision import STATUS_TABLE_KEYS, TTL_ATTRIBUTE
    from uoom.stores.aws import dynamodb_client

    table = settings.dynamodb_table
    try:
        async with dynamodb_client(settings, fail_fast=True) as client:
            described = (await client.describe_table(TableName=table))["Table"]
            ttl = (await client.describe_time_to_live(TableName=table))["TimeToLiveDescription"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return Check("dynamodb", FAIL, f"table {table} does not exist", "run `uoom migrate up` (it creates it)")
    except BotoCoreError as exc:
        return Check(
            "dynamodb", FAIL, f"not answering ({one_line(exc)})", start_or_check(settings, "dynamodb_endpoint")
        )
    wrong = table_differences(described, ttl, STATUS_TABLE_KEYS, TTL_ATTRIBUTE)
    if wrong:
        return Check(
            "dynamodb",
            FAIL,
            f"table {table}: {'; '.join(wrong)}",
            "delete the table and run `uoom migrate up`, or point UOOM_DYNAMODB_TABLE at uoom's",
        )
    return Check("dynamodb", OK, f"table {table}: key orderId, GSI CustomerStatusIndex, TTL on {TTL_ATTRIBUTE}")


def table_differences(
    described: dict[str, Any], ttl: dict[str, Any], wanted: dict[str, Any], ttl_attribute: str
) -> list[str]:
    """What differs between a DescribeTable answer and the table uoom provisions."""

    def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    wrong = []
    if keys(described.get("KeySchema", [])) != keys(wanted["KeySchema"]):
        wrong.append(f"key is {keys(described.get('KeySchema', []))}, expected {keys(wanted['KeySchema'])}")
    have = {g["IndexName"]: keys(g["KeySchema"]) for g in described.get("GlobalSecondaryIndexes", [])}
    for index in wanted["GlobalSecondaryIndexes"]:
        name, schema = index["IndexName"], keys(index["KeySchema"])
        if name not in have:
            wrong.append(f"GSI {name} missing")
        elif have[name] != schema:
            wrong.append(f"GSI {name} key is {have[name]}, expected {schema}")
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or ttl.get("AttributeName") != ttl_attribute:
        wrong.append(
            f"TTL is {ttl.get('TimeToLiveStatus', 'DISABLED')} on {ttl.get('AttributeName')!r}, "
            f"expected ENABLED on {ttl_attribute!r}"
        )
    return wrong


async def outbox(settings: Settings, max_lag: float, max_dead_letters: int) -> Check:
    """The lag of the oldest unpublished event, and the dead letters not replayed yet."""
    import asyncpg

    from uoom.stores import outbox as store

    try:
        conn = await asyncpg.connect(settings.database_url.get_secret_value(), timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return Check("outbox", SKIP, "not checked: PostgreSQL is not answering (its row says why)")
    try:
        state = await store.status(conn)
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
        return Check("outbox", SKIP, "not checked: the database is not migrated (the postgres row says why)")
    finally:
        await conn.close()
    detail = (
        f"{state.pending} pending, lag {state.lag_seconds:.1f} s (max {max_lag:g}); "
        f"{state.dead_letters_open} open dead letter(s) (max {max_dead_letters})"
    )
    if state.lag_seconds > max_lag:
        return Check("outbox", FAIL, detail, "is the relay running? `uoom relay --check`; `uoom up` starts it")
    if state.dead_letters_open > max_dead_letters:
        return Check("outbox", FAIL, detail, "`uoom dlq list` shows them; `uoom dlq replay` sends them again")
    return Check("outbox", OK, detail)
