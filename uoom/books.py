"""The books of a run: for a set of order ids, is each one where the platform promises it is?

- PostgreSQL (the write side) holds its row;
- the read model (DynamoDB, read directly, not through DAX) holds its item at PostgreSQL's
  version, allowing `settle_s` for the projector to catch up;
- Kafka holds its `order.created` event (found by key, the order id, as the relay keys them),
  its events in version order on their partition, and a version twice only under the same
  event id (a relay's retry may publish an event twice, never two different events);
- its trip, if it has one, holds: as many orders as the trip's riders, all of the trip's
  restaurant and on one channel, the two orders of a pair each other's co-rider.

It also counts the slots the orders hold on each channel (`slots`): an order in flight holds one,
and the two orders of a trip one between them, until the last of them is delivered, cancelled or
failed (the load tracker's rule, docs/dispatch.md).

Every part is bounded in time, and a service that does not answer is reported as a part that
could not be checked (`unchecked`), never raised: `uoom bench` and the fault suite read the
books after they broke things on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from uoom.config import Settings
from uoom.domain.events import ORDER_CREATED
from uoom.domain.orders import FINISHED_STATES

PG_CHUNK = 5000
BATCH_GET_LIMIT = 100  # DynamoDB's maximum keys per BatchGetItem
RETRY_PAUSE_S = 0.5
CONNECT_TIMEOUT_S = 5.0
SHOWN = 10  # ids listed per problem in `lines()`


@dataclass(frozen=True)
class Books:
    orders: int
    missing_in_postgres: list[str]
    missing_in_read_model: list[str]
    stale_in_read_model: list[str]  # its version differs from PostgreSQL's after the settle time
    missing_events: list[str]  # no order.created on Kafka
    out_of_order: list[str]  # its events are not in version order on its partition
    conflicting_duplicates: list[str]  # the same order and version under different event ids
    seconds: float
    unchecked: dict[str, str] = field(default_factory=dict)  # part -> why it could not be checked
    checked: tuple[str, ...] = ()  # the parts that were read: postgres, read model, kafka
    broken_trips: list[str] = field(default_factory=list)  # orders on a trip that does not hold
    slots: dict[str, int] = field(default_factory=dict)  # channel -> slots the orders in flight hold

    PROBLEMS = (
        ("missing_in_postgres", "missing in PostgreSQL"),
        ("missing_in_read_model", "missing in the read model"),
        ("stale_in_read_model", "stale in the read model (version differs from PostgreSQL)"),
        ("missing_events", "without order.created on Kafka"),
        ("out_of_order", "with events out of version order on Kafka"),
        ("conflicting_duplicates", "with one version under two event ids on Kafka"),
        ("broken_trips", "on a trip that does not hold (riders, restaurant, channel or co-riders)"),
    )

    @property
    def holds(self) -> bool:
        """Nothing wrong in the parts that were checked."""
        return not any(getattr(self, name) for name, _ in self.PROBLEMS)

    @property
    def ok(self) -> bool:
        """Every part asked for was checked, and nothing is wrong."""
        return self.holds and not self.unchecked

    def lines(self, shown: int = SHOWN) -> list[str]:
        """A human summary: one line for the verdict, one per problem (up to `shown` ids each),
        one per part that could not be checked."""
        parts = ", ".join(self.checked) or "nothing"
        verdict = "hold" if self.holds else "do NOT hold"
        out = [f"books {verdict} for {self.orders} orders (checked: {parts}; {self.seconds:.1f} s)"]
        for name, label in self.PROBLEMS:
            ids: list[str] = getattr(self, name)
            if ids:
                more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
                out.append(f"{len(ids)} {label}: {', '.join(ids[:shown])}{more}")
        out += [f"not checked: {part} ({why})" for part, why in self.unchecked.items()]
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "ok": self.ok,
            "holds": self.holds,
            "checked": list(self.checked),
            "unchecked": dict(self.unchecked),
            "seconds": round(self.seconds, 3),
            **{name: list(getattr(self, name)) for name, _ in self.PROBLEMS},
            "slots": dict(self.slots),
        }


async def audit(
    settings: Settings,
    order_ids: Collection[str],
    *,
    since: datetime | None = None,
    settle_s: float = 30.0,
    kafka: bool = True,
    read_model: bool = True,
) -> Books:
    """Check the books of `order_ids`. `since`: no event of these orders is older (Kafka is read
    from the offsets of that time on; None: from the start of the topic). Waits up to
    `settle_s` for the read model and Kafka to converge; never raises for a service that is down."""
    started = time.monotonic()
    deadline = started + settle_s
    ids, malformed = _normalised(order_ids)
    unchecked: dict[str, str] = {}
    checked: list[str] = []
    versions: dict[str, int] | None = None
    trips = TripBooks()
    try:
        versions, trips = await asyncio.wait_for(_postgres(settings, ids), timeout=max(settle_s, 10.0))
        checked.append("postgres")
    except Exception as exc:  # noqa: BLE001 - any failure: the part is reported as unchecked
        unchecked["postgres"] = _reason(exc)
    missing_pg = sorted(malformed + ([i for i in ids if i not in versions] if versions is not None else []))

    async def read_side() -> tuple[list[str], list[str]]:
        try:
            found = await _read_model(settings, ids, versions or {}, deadline)
        except Exception as exc:  # noqa: BLE001
            unchecked["read model"] = _reason(exc)
            return [], []
        checked.append("read model")
        missing = sorted(i for i in ids if i not in found)
        stale = sorted(i for i, v in found.items() if versions is not None and i in versions and versions[i] != v)
        return missing, stale

    async def events() -> tuple[list[str], list[str], list[str]]:
        try:
            result = await _kafka(settings, ids, since, deadline)
        except Exception as exc:  # noqa: BLE001
            unchecked["kafka"] = _reason(exc)
            return [], [], []
        checked.append("kafka")
        return result

    async def skipped(result: Any) -> Any:
        return result

    (missing_rm, stale_rm), (missing_ev, disorder, conflicts) = await asyncio.gather(
        read_side() if read_model else skipped(([], [])), events() if kafka else skipped(([], [], []))
    )
    order = ("postgres", "read model", "kafka")
    return Books(
        orders=len(ids) + len(malformed),
        missing_in_postgres=missing_pg,
        missing_in_read_model=missing_rm,
        stale_in_read_model=stale_rm,
        missing_events=missing_ev,
        out_of_order=disorder,
        conflicting_duplicates=conflicts,
        seconds=time.monotonic() - started,
        unchecked=unchecked,
        checked=tuple(p for p in order if p in checked),
        broken_trips=trips.broken,
        slots=trips.slots,
    )


def _normalised(order_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """(canonical uuids, the ids that are no uuid at all: missing everywhere by definition)."""
    ids: dict[str, None] = {}
    malformed = []
    for raw in order_ids:
        try:
            ids[str(uuid.UUID(str(raw)))] = None
        except ValueError:
            malformed.append(str(raw))
    return list(ids), malformed


def _reason(exc: BaseException) -> str:
    from uoom.errors import describe
    from uoom.redact import mask_secrets

    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return mask_secrets(describe(exc))  # a driver's message may quote a URL with its password


async def _postgres(settings: Settings, ids: list[str]) -> tuple[dict[str, int], TripBooks]:
    """order id -> version, for those of `ids` that PostgreSQL holds; the books of their trips."""
    from uoom.stores.postgres import connect

    conn = await connect(settings, connect_timeout=CONNECT_TIMEOUT_S)
    try:
        found: dict[str, int] = {}
        rows: list[dict[str, Any]] = []
        for at in range(0, len(ids), PG_CHUNK):
            chunk = ids[at : at + PG_CHUNK]
            found.update((r["id"], r["version"]) for r in await conn.fetch(
                "SELECT id::text AS id, version FROM orders WHERE id = ANY($1::uuid[])", chunk))  # fmt: skip
            rows += map(dict, await conn.fetch(_RIDERS, chunk))
        return found, trip_books(rows, set(found))
    finally:
        await conn.close()


# Every order without a trip, and every rider of the trips of the given orders (a co-rider outside
# them included: the trip's books need both), with the trip as the write side holds it.
_RIDERS = """SELECT o.id::text AS id, o.status::text AS status, o.channel_id, o.restaurant_id::text AS restaurant_id,
        o.trip_id::text AS trip_id, o.co_rider_id::text AS co_rider_id, t.riders,
        t.restaurant_id::text AS trip_restaurant_id
    FROM orders o LEFT JOIN trips t ON t.id = o.trip_id
    WHERE o.id = ANY($1::uuid[])
       OR o.trip_id IN (SELECT trip_id FROM orders WHERE id = ANY($1::uuid[]) AND trip_id IS NOT NULL)"""
FINISHED = frozenset(s.value for s in FINISHED_STATES)


@dataclass
class TripBooks:
    broken: list[str] = field(default_factory=list)  # audited orders on a trip that does not hold
    slots: dict[str, int] = field(default_factory=dict)  # channel -> slots held by audited orders in flight


def trip_books(rows: Iterable[dict[str, Any]], audited: Collection[str]) -> TripBooks:
    """The trips of the audited orders (`rows`: _RIDERS) and the slots they hold, a trip as one."""
    riders: dict[str, list[dict[str, Any]]] = defaultdict(list)
    holders: dict[str, set[str]] = defaultdict(set)
    for row in {r["id"]: r for r in rows}.values():
        if row["trip_id"]:
            riders[row["trip_id"]].append(row)
        if row["id"] in audited and row["channel_id"] and row["status"] not in FINISHED:
            holders[row["channel_id"]].add(row["trip_id"] or row["id"])
    broken: set[str] = set()
    for on_trip in riders.values():
        first = on_trip[0]
        pair = {r["id"] for r in on_trip}
        holds = (
            len(on_trip) == first["riders"]
            and all(r["restaurant_id"] == first["trip_restaurant_id"] for r in on_trip)
            and len({r["channel_id"] for r in on_trip}) == 1
            and all(r["co_rider_id"] == (next(iter(pair - {r["id"]})) if len(pair) == 2 else None) for r in on_trip)
        )
        if not holds:
            broken |= pair & set(audited)
    return TripBooks(sorted(broken), {channel: len(held) for channel, held in sorted(holders.items())})


async def _read_model(settings: Settings, ids: list[str], versions: dict[str, int], deadline: float) -> dict[str, int]:
    """order id -> version of the live item, re-read until every item is there at PostgreSQL's
    version or the deadline passes (the projector may be behind)."""
    from uoom.stores.aws import dynamodb_client

    found: dict[str, int] = {}
    pending = list(ids)
    async with dynamodb_client(settings, fail_fast=True) as ddb:
        while True:
            for at in range(0, len(pending), BATCH_GET_LIMIT):
                found.update(await _batch_get(ddb, settings.dynamodb_table, pending[at : at + BATCH_GET_LIMIT]))
            pending = [i for i in ids if i not in found or (i in versions and found[i] != versions[i])]
            if not pending or time.monotonic() + RETRY_PAUSE_S > deadline:
                return found
            await asyncio.sleep(RETRY_PAUSE_S)


async def _batch_get(ddb: Any, table: str, ids: list[str]) -> dict[str, int]:
    now = time.time()
    keys: list[dict[str, Any]] = [{"orderId": {"S": i}} for i in ids]
    found: dict[str, int] = {}
    for _ in range(20):  # UnprocessedKeys: DynamoDB throttled part of the batch
        request = {table: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "orderId, version, #t",
                           "ExpressionAttributeNames": {"#t": "ttl"}}}  # fmt: skip
        response = await ddb.batch_get_item(RequestItems=request)
        for item in response.get("Responses", {}).get(table, []):
            if int(item.get("ttl", {}).get("N", "0")) > now:  # an expired item is missing (readmodel.py)
                found[item["orderId"]["S"]] = int(item["version"]["N"])
        keys = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if not keys:
            break
        await asyncio.sleep(0.05)
    return found


@dataclass
class _Seen:
    created: bool = False
    # partition -> [(version, event id)] in offset order
    by_partition: dict[int, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))


async def _kafka(
    settings: Settings, ids: list[str], since: datetime | None, deadline: float
) -> tuple[list[str], list[str], list[str]]:
    """(ids without order.created, ids out of version order, ids with conflicting duplicates),
    reading the order topic from `since` to its end, again until every order.created is found or
    the deadline passes (the relay may be behind)."""
    from aiokafka import TopicPartition

    from uoom.stores.kafka import consumer as kafka_consumer

    wanted = set(ids)
    seen: dict[str, _Seen] = {}
    client = kafka_consumer(settings, group_id=None, request_timeout_ms=5000, metadata_max_age_ms=5000,
                            connections_max_idle_ms=60000, auto_offset_reset="earliest")  # fmt: skip
    try:
        await asyncio.wait_for(client.start(), timeout=CONNECT_TIMEOUT_S * 2)
        numbers = await asyncio.wait_for(_partitions(settings), timeout=CONNECT_TIMEOUT_S * 2)
        partitions = [TopicPartition(settings.kafka_topic, p) for p in numbers]
        client.assign(partitions)
        if since is None:
            await client.seek_to_beginning(*partitions)
        else:
            starts = await client.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
            ends = await client.end_offsets(partitions)
            for tp in partitions:
                found = starts.get(tp)
                client.seek(tp, found.offset if found is not None else ends[tp])
        while True:
            ends = await client.end_offsets(partitions)
            while time.monotonic() < deadline and await _behind(client, partitions, ends):
                batches = await client.getmany(timeout_ms=200, max_records=5000)
                for tp, messages in batches.items():
                    for message in messages:
                        _note(seen, wanted, tp.partition, message.key, message.value)
            if all(i in seen and seen[i].created for i in ids) or time.monotonic() + RETRY_PAUSE_S > deadline:
                break
            await asyncio.sleep(RETRY_PAUSE_S)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.stop(), timeout=CONNECT_TIMEOUT_S)
    missing = sorted(i for i in ids if i not in seen or not seen[i].created)
    disorder, conflicts = [], []
    for order_id, s in sorted(seen.items()):
        chains = list(s.by_partition.values())
        if len(chains) > 1 or any(a[0] > b[0] for chain in chains for a, b in itertools.pairwise(chain)):
            disorder.append(order_id)
        ids_by_version: dict[int, set[str]] = defaultdict(set)
        for version, event_id in (e for chain in chains for e in chain):
            ids_by_version[version].add(event_id)
        if any(len(event_ids) > 1 for event_ids in ids_by_version.values()):
            conflicts.append(order_id)
    return missing, disorder, conflicts


async def _partitions(settings: Settings) -> list[int]:
    """The order topic's partition numbers (a consumer that assigns, not subscribes, is not told)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        (described,) = await admin.describe_topics([settings.kafka_topic])
    finally:
        await admin.close()
    if described["error_code"] or not described["partitions"]:
        raise LookupError(f"topic {settings.kafka_topic} does not exist")
    return sorted(p["partition"] for p in described["partitions"])


async def _behind(client: Any, partitions: list[Any], ends: dict[Any, int]) -> bool:
    for tp in partitions:
        if await client.position(tp) < ends[tp]:
            return True
    return False


def _note(seen: dict[str, _Seen], wanted: set[str], partition: int, key: bytes | None, value: bytes | None) -> None:
    order_id = (key or b"").decode(errors="replace")
    if order_id not in wanted:
        return
    try:
        body = orjson.loads(value or b"null")
        version, event_id, event_type = int(body["version"]), str(body["id"]), body.get("type")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return  # not an event of ours: the relay never writes one
    s = seen.setdefault(order_id, _Seen())
    s.created |= event_type == ORDER_CREATED
    s.by_partition[partition].append((version, event_id))
