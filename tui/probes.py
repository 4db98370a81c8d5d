"""The dashboard's own look at Kafka, DynamoDB and DAX, so their rows mean something with no daemon
running: one cheap request each (cluster metadata, DescribeTable, one GetItem) every `every`
seconds (30; 10 while the service is not up, and at once when its health cell takes the focus),
over a client kept open between probes; each bounded in time, never raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tui.readings import NOT_ASKED, Seen
from uoom.config import Settings
from uoom.errors import describe

PROBE_EVERY_SECONDS = 30.0  # a store's state changes rarely; each probe is a request to it, and CPU on 2 cores
RETRY_SECONDS = 10.0  # sooner while a store is not up, so its recovery shows
DAX_PROBE_KEY = "uoom-health-probe"  # a key that need not exist: a miss is a full round trip


class Probes:
    def __init__(self, settings: Settings, timeout: float, every: float = PROBE_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.settings, self.timeout, self.every, self._clock = settings, timeout, every, clock
        checks: dict[str, Callable[[], Awaitable[str]]] = {"kafka": self._kafka, "dynamodb": self._dynamodb}
        if settings.dax_endpoint:
            checks["dax"] = self._dax
        self._checks = checks
        self.seen: dict[str, Seen] = dict.fromkeys(checks, NOT_ASKED)
        self._asked: dict[str, float] = {}
        self._stack = contextlib.AsyncExitStack()
        self._kafka_client: Any = None
        self._dynamodb_client: Any = None
        self._dax_client: Any = None

    async def open(self) -> None:
        """Import the clients and build the DynamoDB one now (it costs most of a second of CPU):
        done during a probe, it would hold up the loop past the other reads' timeouts."""
        import aiokafka.client  # noqa: F401 - imported ahead, for the same reason

        from uoom.stores.aws import dynamodb_client

        client = dynamodb_client(self.settings, fail_fast=True)
        self._dynamodb_client = await self._stack.enter_async_context(client)

    def soon(self, name: str) -> None:
        """Ask `name` again at the next read (its health cell has the focus: the operator is looking)."""
        self._asked.pop(name, None)

    async def read(self) -> dict[str, Seen]:
        """Every service's latest reading, asking again those whose last answer is `every` old
        (`RETRY_SECONDS`, if shorter, when it was not up), or that nobody has asked yet."""
        now = self._clock()
        due = [name for name in self._checks if name not in self._asked or now - self._asked[name] >= self._wait(name)]
        for name in due:
            self._asked[name] = now
        await asyncio.gather(*(self._ask(name) for name in due))
        return dict(self.seen)

    def _wait(self, name: str) -> float:
        return self.every if self.seen[name].up else min(self.every, RETRY_SECONDS)

    async def _ask(self, name: str) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                detail = await self._checks[name]()
        except TimeoutError:
            self.seen[name] = Seen(False, f"no answer in {self.timeout:g} s", f"no answer in {self.timeout:g} s")
        except Exception as exc:  # noqa: BLE001 - a failed probe is this row's finding
            self.seen[name] = Seen(False, describe(exc), describe(exc))
        else:
            self.seen[name] = Seen(True, f"{detail}, {(time.perf_counter() - started) * 1000:.1f} ms")

    async def _kafka(self) -> str:
        from aiokafka.client import AIOKafkaClient

        if self._kafka_client is None:
            # A refused connection is this row's finding; aiokafka would also log it to the screen.
            logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
            client = AIOKafkaClient(bootstrap_servers=self.settings.kafka_bootstrap,
                                    request_timeout_ms=int(self.timeout * 1000), client_id="uoom-dash")  # fmt: skip
            try:
                await client.bootstrap()
            except BaseException:
                await _quietly(client.close())
                raise
            self._kafka_client = client
        try:
            cluster = await self._kafka_client.fetch_all_metadata()
        except BaseException:
            client, self._kafka_client = self._kafka_client, None
            await _quietly(client.close())
            raise
        partitions = cluster.partitions_for_topic(self.settings.kafka_topic)
        topic = f"{self.settings.kafka_topic}: {len(partitions)} partitions" if partitions else "no order topic"
        return f"{len(cluster.brokers())} broker(s), {topic}"

    async def _dynamodb(self) -> str:
        table = self.settings.dynamodb_table
        described = (await self._dynamodb_client.describe_table(TableName=table))["Table"]
        return f"table {table} {described.get('TableStatus', '?').lower()}"

    async def _dax(self) -> str:
        from uoom.health.checks import in_daemon_thread
        from uoom.health.dax import dax_client

        kept, self._dax_client = self._dax_client, None  # a probe that times out leaves it to its thread

        def get_item() -> Any:  # blocking (amazon-dax-client): off the loop
            client = kept or dax_client(self.settings)
            try:
                client.get_item(TableName=self.settings.dynamodb_table, Key={"orderId": {"S": DAX_PROBE_KEY}})
            except Exception:
                client.close()
                raise
            return client

        self._dax_client = await in_daemon_thread(get_item, self.timeout)
        return f"GetItem through {self.settings.dax_endpoint}"

    async def close(self) -> None:
        if self._kafka_client is not None:
            await _quietly(self._kafka_client.close())
        if self._dax_client is not None:
            self._dax_client.close()
        await _quietly(self._stack.aclose())


async def _quietly(closing: Awaitable[Any]) -> None:
    with contextlib.suppress(Exception):
        await closing
