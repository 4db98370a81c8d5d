"""Fixtures of the fault suite: one private stack for the session (see harness.py), its services
brought back up before each test, and the daemons of each test stopped by pid after it."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Daemons, FaultStack


@pytest.fixture(scope="session")
def private_stack() -> Iterator[FaultStack]:
    """PostgreSQL, Redis, Kafka and DynamoDB of the fault suite alone: migrated, provisioned, demo
    data and an API key; stopped by pid at the end of the session.

    Its home is not under pytest's temporary folder: PostgreSQL runs as its own user and needs to
    traverse the path, and pytest makes its per-user root private again whenever another session
    starts."""
    home = Path(tempfile.mkdtemp(prefix="uoom-faults-"))
    home.chmod(0o755)
    stack = FaultStack(home)
    try:
        asyncio.run(stack.setup())
        yield stack
    finally:
        stack.down()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def fault_stack(private_stack: FaultStack) -> FaultStack:
    """The private stack with every service answering (an earlier test may have left one down)."""
    await private_stack.up()
    return private_stack


# The daemons' logs of each test's last run are copied here: pytest's temporary folders are
# rotated away by other test sessions on a shared machine.
LOGS = Path(tempfile.gettempdir()) / "uoom-faults-logs"


@pytest.fixture
async def daemons(fault_stack: FaultStack, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Daemons]:
    running = Daemons(fault_stack, tmp_path)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop_all)
        kept = LOGS / request.node.name
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(tmp_path, kept, ignore=lambda _, names: [n for n in names if not n.endswith(".log")])
