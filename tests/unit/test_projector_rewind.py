"""When the read model's table is recreated, the projector re-reads the topic; a rewind it could
not do (no partitions assigned during a rebalance, the broker not answering, the group rebalanced
before the rewind was committed) is tried again at the next check instead of being forgotten,
which left the orders before the restart out for good."""

from __future__ import annotations

from typing import Any

from aiokafka.errors import CommitFailedError, KafkaConnectionError
from aiokafka.structs import OffsetAndTimestamp, TopicPartition

from daemons.relay.projector import Projector
from uoom.config import Settings

TP = TopicPartition("orders", 0)


class FakeTable:
    def __init__(self, born: str) -> None:
        self.born = born

    async def describe_table(self, TableName: str) -> dict[str, Any]:  # boto's argument name
        return {"Table": {"CreationDateTime": self.born}}


class FakeConsumer:
    def __init__(self) -> None:
        self.partitions: set[TopicPartition] = set()
        self.broker_answers = True
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.group_stable = True
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.partitions

    async def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, OffsetAndTimestamp]:
        if not self.broker_answers:
            raise KafkaConnectionError("broker down")
        return {tp: OffsetAndTimestamp(7, at) for tp, at in times.items()}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not self.group_stable:
            raise CommitFailedError("the group rebalanced")
        self.commits.append(offsets)


async def check(projector: Projector, table: FakeTable, consumer: FakeConsumer) -> None:
    projector._table_checked = 0.0  # due now, whatever TABLE_CHECK_S
    await projector._follow_table(table, consumer)  # type: ignore[arg-type]


async def test_a_recreated_table_is_rewound_once_partitions_and_broker_allow() -> None:
    projector, table, consumer = Projector(Settings()), FakeTable("t1"), FakeConsumer()
    consumer.partitions = {TP}
    await check(projector, table, consumer)  # first sight: nothing to re-apply
    assert consumer.seeks == []

    table.born = "t2"  # DynamoDB came back empty and the table was created again
    consumer.partitions = set()  # ...during a rebalance
    await check(projector, table, consumer)
    consumer.partitions, consumer.broker_answers = {TP}, False
    await check(projector, table, consumer)
    assert consumer.seeks == []

    consumer.broker_answers, consumer.group_stable = True, False  # sought, but not committed: undone by the rebalance
    await check(projector, table, consumer)
    assert consumer.seeks == [(TP, 7)] and consumer.commits == []

    consumer.group_stable = True
    await check(projector, table, consumer)
    assert consumer.seeks == [(TP, 7), (TP, 7)] and consumer.commits == [{TP: 7}]
    await check(projector, table, consumer)  # done: the same table is not re-applied again
    assert consumer.seeks == [(TP, 7), (TP, 7)]
