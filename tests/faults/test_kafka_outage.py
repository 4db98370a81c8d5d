"""Kafka stopped for 30 s under load, then started: creates keep answering 201 (the outbox holds
the events), the relay recovers by itself (no restart), the backlog drains and the books hold."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tests.faults.harness import (
    RATE,
    Daemons,
    FaultStack,
    SteadyLoad,
    check_books,
    misbehaviour,
    outbox_drained,
    record,
)

OUTAGE_S = 30.0


async def test_kafka_stopped_30s_creates_answer_and_the_relay_recovers_alone(
    fault_stack: FaultStack, daemons: Daemons
) -> None:
    platform = await daemons.platform(apis=1, relays=1, optimizers=1)
    since = datetime.now(UTC)
    load = SteadyLoad([d.url for d in platform["serve"]], fault_stack.api_key, rate=RATE)
    async with load.running():
        await asyncio.sleep(3)
        fault_stack.stop("kafka")
        down = time.monotonic()
        await asyncio.sleep(OUTAGE_S - (time.monotonic() - down))
        during = load.between(down)
        restart_s = await fault_stack.up("kafka")
        ended_at, ended = datetime.now(UTC), time.monotonic()
        drained = await outbox_drained(fault_stack.dsn, ended_at)
        await asyncio.sleep(2)
    fault_s = ended - down

    for daemon in (d for kind in platform.values() for d in kind):
        assert daemon.alive and daemon.starts == 1, f"{daemon.name} was restarted or died:\n{daemon.log_tail()}"
    assert drained is not None, f"the relay did not drain the backlog within 60 s:\n{platform['relay'][0].log_tail()}"
    books = await check_books(fault_stack, load, since)
    problems = misbehaviour(load.answers)
    creates = [a for a in during if a.kind == "create"]
    refused = {k: n for k, n in load.by_status(creates).items() if k != "201"}
    if refused:
        problems.append(f"creates during the outage not answered 201: {refused}")
    record("Kafka stopped 30 s", load=load, fault_s=fault_s, books_s=books.seconds, problems=problems,
           recovery={"drained": drained, "firstSuccess": load.first_success_after(ended), "kafkaStart": restart_s},
           notes="fault: from the stop until Kafka answers again (its restart included); "
                 "drained: from then to every event written during the outage on Kafka")  # fmt: skip
    assert creates and not problems, problems
