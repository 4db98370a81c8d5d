"""The relay crashes under load: SIGKILLed ten times in a row, and one of two relays killed while
both run. Nothing is lost, every order's events reach Kafka in version order, and an event seen
twice carries its one id (a batch published but not yet recorded is published again)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

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


async def test_relay_sigkilled_ten_times_under_load_loses_nothing(fault_stack: FaultStack, daemons: Daemons) -> None:
    platform = await daemons.platform(apis=1, relays=1, optimizers=0)
    relay = platform["relay"][0]
    since = datetime.now(UTC)
    # Half the suite's rate: ten relay start-ups in 15 s (imports, the projector child) are a CPU
    # storm of their own on two cores, and the API's answers must not be judged by it.
    load = SteadyLoad([d.url for d in platform["serve"]], fault_stack.api_key, rate=RATE / 2)
    async with load.running():
        await asyncio.sleep(2)
        fault_started = time.monotonic()
        for _ in range(10):
            await asyncio.sleep(0.5 + random.random())  # killed at a random point of its work
            relay.kill()
            await relay.astart()
        fault_s = time.monotonic() - fault_started
        ended_at, ended = datetime.now(UTC), time.monotonic()
        drained = await outbox_drained(fault_stack.dsn, ended_at)
        await asyncio.sleep(1)
    assert relay.starts == 11
    assert drained is not None, "the outbox did not drain within 60 s of the last restart"
    books = await check_books(fault_stack, load, since)
    problems = misbehaviour(load.answers)
    record("relay SIGKILLed 10 times", load=load, fault_s=fault_s, books_s=books.seconds, problems=problems,
           recovery={"drained": drained, "firstSuccess": load.first_success_after(ended)},
           notes="recovery: from the 10th restart answering to every event written until then on Kafka")  # fmt: skip
    assert not problems, problems


async def test_one_of_two_relays_killed_under_load_loses_nothing(fault_stack: FaultStack, daemons: Daemons) -> None:
    platform = await daemons.platform(apis=1, relays=2, optimizers=0)
    victim, survivor = platform["relay"]
    since = datetime.now(UTC)
    load = SteadyLoad([d.url for d in platform["serve"]], fault_stack.api_key, rate=RATE)
    async with load.running():
        await asyncio.sleep(3)
        victim.kill()  # holding claimed rows: PostgreSQL rolls its transaction back, the survivor takes them
        killed_at, killed = datetime.now(UTC), time.monotonic()
        drained = await outbox_drained(fault_stack.dsn, killed_at)
        await asyncio.sleep(3)
    assert survivor.alive and survivor.starts == 1
    assert drained is not None, "the surviving relay did not drain the outbox within 60 s"
    books = await check_books(fault_stack, load, since)
    problems = misbehaviour(load.answers)
    record("one of two relays SIGKILLed", load=load, fault_s=0.0, books_s=books.seconds, problems=problems,
           recovery={"drained": drained, "firstSuccess": load.first_success_after(killed)},
           notes="recovery: from the kill to every event written until then on Kafka (by the survivor)")  # fmt: skip
    assert not problems, problems


async def test_a_killed_relay_takes_its_starved_projector_with_it(fault_stack: FaultStack, daemons: Daemons) -> None:
    """A relay crashes while its projector child gets no CPU (stopped here, starved on a saturated
    machine): the child must go at once, not linger for minutes holding the projector group's
    partitions until it gets to read its stdin's end-of-file."""
    [relay] = await daemons.start("relay")
    children = Path(f"/proc/{relay.pid}/task/{relay.pid}/children")
    deadline = time.monotonic() + 30
    while not children.read_text().split() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    [child] = children.read_text().split()
    os.kill(int(child), signal.SIGSTOP)
    try:
        relay.kill()
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not _alive(child), f"the projector outlived its relay: {_describe(child)}"
    finally:
        if _alive(child):
            os.kill(int(child), signal.SIGKILL)
            os.kill(int(child), signal.SIGCONT)


def _alive(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _describe(pid: str) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = [
            line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line[:5] in ("State", "PPid:")
        ]
        return f"{pid} {cmdline} {state}"
    except OSError as exc:
        return f"{pid}: {exc}"
