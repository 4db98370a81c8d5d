"""Read-model projector: order events from Kafka -> version-guarded DynamoDB status items.

A Kafka consumer group (`uoom-projector`) rather than a stage of the publishing loop: it commits
its offsets only after DynamoDB took the writes, so a DynamoDB outage delays the read side but
never the publishing, and when DynamoDB is back the group resumes where it stopped and the read
side converges. The writes are conditional on `version`, so replays and duplicates are harmless.

A new order's item (version 1) is written by the projector alone (the API only caches it), so
it goes straight to a conditional write. For later versions it reads before it writes: one
BatchGetItem per 100 orders tells which items already hold the snapshot's version (the API's
write-through of a status change usually put it there), and only the others are written: one
cheap read per hundred events instead of a hundred refused writes.

The writes go out up to 100 to a TransactWriteItems, each Put with its own version condition:
in the client a request costs ~2 ms of CPU (signing, HTTP, parsing) whatever it carries, and a
PutItem per order made the projector the relay's largest cost. On AWS a transactional write
costs two write units instead of one; an item whose condition fails (a newer version is there)
cancels the transaction, and the others go again without it. A write refused for its content
would be refused forever: it is counted as skipped.

It also rebuilds the read model when the table comes back empty (a DynamoDB restarted without its
data, a table dropped and recreated): a missing table is recreated, and whenever the table's
creation time changes the projector re-reads the topic from `order_cache_ttl_hours` ago (what the
read model holds at most) and re-applies it. Without that, an order with no newer event would
stay missing from the read model: reads fall back to PostgreSQL, but the listing by customer
would not show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from botocore.exceptions import ClientError

from daemons.kit.health import Dependency
from uoom.config import Settings
from uoom.domain.events import order_snapshot
from uoom.provision import ensure_status_table
from uoom.stores.aws import dynamodb_client
from uoom.stores.kafka import consumer as kafka_consumer
from uoom.stores.readmodel import TRANSACTION_LIMIT, put_all_if_newer

log = logging.getLogger("uoom.relay.projector")
REQUIRED = ("id", "customerId", "status", "version", "updatedAt", "createdAt")
WRITE_CONCURRENCY = 4  # transactions of up to 100 writes in flight
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 250
BATCH_GET_LIMIT = 100  # DynamoDB's maximum keys per BatchGetItem
TABLE_CHECK_S = 5.0  # how often the table's creation time is compared


@dataclass
class ProjectorStats:
    applied: int = 0  # written
    current: int = 0  # the item already held this version or a newer one: nothing to write
    stale: int = 0  # the conditional write lost to a newer version written meanwhile
    skipped: int = 0  # no usable order snapshot in the event, or refused by DynamoDB for good
    errors: int = 0  # failed writes, retried
    lag: int = 0  # events on Kafka not projected yet

    def as_json(self) -> dict[str, int]:
        return asdict(self)


def latest_snapshots(values: Iterable[bytes | None]) -> tuple[dict[str, dict[str, Any]], int]:
    """The newest order snapshot per order among event bodies, and how many bodies carried no
    usable snapshot. One write per order per batch: a backlog of five events an order costs
    one conditional write, not five."""
    newest: dict[str, dict[str, Any]] = {}
    unusable = 0
    for value in values:
        try:
            body = orjson.loads(value or b"null")
            snapshot = order_snapshot(body.get("data") or {}) if isinstance(body, dict) else None
        except orjson.JSONDecodeError:
            snapshot = None
        if snapshot is None or any(key not in snapshot for key in REQUIRED):
            unusable += 1
            continue
        seen = newest.get(snapshot["id"])
        if seen is None or int(seen["version"]) < int(snapshot["version"]):
            newest[snapshot["id"]] = snapshot
    return newest, unusable


class Projector:
    def __init__(self, settings: Settings, stats: ProjectorStats | None = None) -> None:
        self.settings = settings
        self.stats = stats or ProjectorStats()
        self.kafka = Dependency("projector: Kafka", log)  # quiet while the broker starts
        self._table_born: Any = None  # the table's CreationDateTime as last seen (None: not seen)
        self._table_checked = 0.0

    async def run(self, stopping: asyncio.Event) -> None:
        consumer = await self._start(stopping)
        if consumer is None:
            return
        try:
            async with dynamodb_client(self.settings) as ddb:
                self._table_born = await self._table_created(ddb)
                while not stopping.is_set():
                    fetched = await consumer.getmany(timeout_ms=500, max_records=2000)
                    values = [record.value for records in fetched.values() for record in records]
                    if values:
                        snapshots, unusable = latest_snapshots(values)
                        self.stats.skipped += unusable
                        if not await self._apply(ddb, list(snapshots.values()), stopping):
                            return  # stopping while DynamoDB is down: the offsets stay behind
                        await self._commit(consumer)
                    await self._follow_table(ddb, consumer)
                    await self._measure_lag(consumer)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def _start(self, stopping: asyncio.Event) -> AIOKafkaConsumer | None:
        delay = 0.5
        while not stopping.is_set():
            consumer = kafka_consumer(
                self.settings,
                self.settings.kafka_topic,
                group_id=self.settings.relay_projector_group,
                # let the broker gather up to 250 ms of events: fewer, fuller DynamoDB round trips
                fetch_min_bytes=FETCH_MIN_BYTES,
                fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            )
            try:
                await consumer.start()
                self.kafka.ok()
                return consumer
            except (KafkaError, OSError) as exc:
                self.kafka.failed(exc)
                with contextlib.suppress(Exception):
                    await consumer.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, 10.0)
        return None

    async def _apply(self, ddb: Any, snapshots: list[dict[str, Any]], stopping: asyncio.Event) -> bool:
        """Bring every snapshot in (or find it current, stale or unwritable); False if asked to
        stop while DynamoDB kept failing."""
        delay = 0.5
        while snapshots:
            error: BaseException | None = None
            try:
                changed = [s["id"] for s in snapshots if int(s["version"]) > 1]
                held = await self._versions(ddb, changed) if changed else {}
                newer = [s for s in snapshots if held.get(s["id"], 0) < int(s["version"])]
                self.stats.current += len(snapshots) - len(newer)
                snapshots, error = await self._write(ddb, newer)
            except Exception as exc:  # noqa: BLE001 - DynamoDB down, throttled, or the network: retry
                self.stats.errors += 1
                error = exc
            if not snapshots:
                return True
            log.warning("read model: %d writes failed (%s); retrying in %.1f s", len(snapshots),
                        error or "lost to concurrent writes", delay)  # fmt: skip
            # a missing table meets the read of versions or, for a batch of new orders only, the write
            if error is not None and _code(error) == "ResourceNotFoundException":
                await self._recreate_table()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            if stopping.is_set():
                return False
            delay = min(delay * 2, 10.0)
        return True

    async def _versions(self, ddb: Any, order_ids: list[str]) -> dict[str, int]:
        """The version each order's item holds now (absent: not in the table)."""
        table = self.settings.dynamodb_table
        held: dict[str, int] = {}
        for start in range(0, len(order_ids), BATCH_GET_LIMIT):
            keys = [{"orderId": {"S": i}} for i in order_ids[start : start + BATCH_GET_LIMIT]]
            names = {"#v": "version"}
            request: dict[str, Any] = {
                table: {"Keys": keys, "ProjectionExpression": "orderId, #v", "ExpressionAttributeNames": names}
            }
            while request:
                response = await ddb.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(table, []):
                    held[item["orderId"]["S"]] = int(item["version"]["N"])
                request = response.get("UnprocessedKeys") or {}
                if request:
                    await asyncio.sleep(0.05)  # throttled: DynamoDB asks us to slow down
        return held

    async def _write(
        self, ddb: Any, snapshots: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], BaseException | None]:
        """Conditional writes, up to 100 to a transaction; the snapshots not written (to retry) and
        the first error a transaction raised, if any (a missing table, DynamoDB down)."""
        chunks = [snapshots[i : i + TRANSACTION_LIMIT] for i in range(0, len(snapshots), TRANSACTION_LIMIT)]
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def write(chunk: list[dict[str, Any]]) -> dict[str, str]:
            async with gate:
                return await put_all_if_newer(ddb, self.settings, chunk)

        results = await asyncio.gather(*(write(c) for c in chunks), return_exceptions=True)
        failed: list[dict[str, Any]] = []
        error: BaseException | None = None
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException):
                failed += chunk
                error = error or result
                continue
            for snapshot in chunk:
                outcome = result[snapshot["id"]]
                if outcome == "retry":
                    failed.append(snapshot)
                elif outcome == "unwritable":
                    log.error("order %s refused by DynamoDB for its content: skipped", snapshot["id"])
                    self.stats.skipped += 1
                else:
                    setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        self.stats.errors += len(failed)
        return failed, error

    async def _recreate_table(self) -> None:
        """The table is gone (DynamoDB came back empty): create it, as `uoom migrate up` would."""
        try:
            for done in await ensure_status_table(self.settings):
                log.warning("read model: %s (it was missing); the topic will be re-applied", done)
            self._table_born = "recreated"  # whatever the new table's time: re-apply into it
        except Exception as exc:  # noqa: BLE001 - retried with the write
            log.warning("read model: could not recreate the table: %s", exc)

    async def _table_created(self, ddb: Any) -> Any:
        try:
            described = await ddb.describe_table(TableName=self.settings.dynamodb_table)
        except Exception:  # noqa: BLE001 - missing or unreachable: nothing to compare yet
            return None
        return described["Table"].get("CreationDateTime")

    async def _follow_table(self, ddb: Any, consumer: AIOKafkaConsumer) -> None:
        """Every TABLE_CHECK_S: a table created after the one we wrote to is empty: re-apply the
        events of the read model's lifetime (its items expire after order_cache_ttl_hours)."""
        if time.monotonic() - self._table_checked < TABLE_CHECK_S:
            return
        self._table_checked = time.monotonic()
        born = await self._table_created(ddb)
        if born is None or born == self._table_born:
            return
        if self._table_born is None or await self._rewind(consumer):  # None: first sight since start-up
            self._table_born = born  # else the next check tries again

    async def _rewind(self, consumer: AIOKafkaConsumer) -> bool:
        """Seek every assigned partition back to the read model's lifetime and commit that; False
        if it could not (no partitions during a rebalance, the broker not answering, the group
        rebalanced meanwhile): the next check tries again."""
        since_ms = int((time.time() - self.settings.order_cache_ttl_hours * 3600) * 1000)
        partitions = list(consumer.assignment())
        if not partitions:
            return False
        try:
            offsets = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        except KafkaError as exc:
            log.warning("read model: table recreated, but the topic cannot be re-read yet: %s", exc)
            return False
        rewound = {tp: found.offset for tp in partitions if (found := offsets.get(tp)) is not None}
        # (a partition with nothing that recent has no events to re-apply)
        for tp, offset in rewound.items():
            consumer.seek(tp, offset)
        # Committed at once: a rebalance resets a partition's position to its committed offset,
        # which would undo a seek not committed yet (and this check would not come again).
        try:
            if rewound:
                await consumer.commit(rewound)
        except KafkaError as exc:
            log.warning("read model: table recreated, but the re-read could not be committed yet: %s", exc)
            return False
        log.warning("read model: table recreated; re-applying the events of the last %d h",
                    self.settings.order_cache_ttl_hours)  # fmt: skip
        return True

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await consumer.commit()
        except KafkaError as exc:  # a rebalance moved the partitions: the new owner re-applies
            log.warning("projector offset commit failed (%s); events will be re-applied", exc)

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)  # as of the last fetch
            if highwater is not None:
                lag += max(0, highwater - await consumer.position(tp))
        self.stats.lag = lag


def _code(exc: BaseException) -> str:
    return str(exc.response["Error"]["Code"]) if isinstance(exc, ClientError) else ""
