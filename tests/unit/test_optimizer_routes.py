"""The optimizer's request guard: a caller that hangs up before its solve ends gets nothing solved,
and the handler ends cleanly (CallerGone, a 499), never with an unhandled error (a 500)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from daemons.optimizer.routes import CallerGone, _while_connected


class HungUp:
    """A request whose client has gone: the next message says so."""

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.disconnect"}


class Connected:
    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # the client stays until the answer
        return {"type": "http.disconnect"}


async def test_a_caller_gone_before_the_answer_cancels_the_work() -> None:
    work = asyncio.ensure_future(asyncio.Event().wait())
    with pytest.raises(CallerGone):
        await _while_connected(HungUp(), work)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert work.cancelled()


async def test_a_connected_caller_gets_the_answer() -> None:
    async def answer() -> str:
        await asyncio.sleep(0.01)
        return "solved"

    assert await _while_connected(Connected(), answer()) == "solved"  # type: ignore[arg-type]
