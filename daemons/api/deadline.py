"""Answer on time even when a dependency hangs.

`asyncio.timeout` alone is not enough: when it cancels a query, asyncpg waits (shielded) for the
server to acknowledge the cancel before releasing the connection, so a hung PostgreSQL would hold
the client for `command_timeout`. Here the work runs as its own task: at the deadline the client
gets its 503 at once and the cancelled task cleans up in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_cleaning_up: set[asyncio.Task[Any]] = set()


async def within(seconds: float, work: Coroutine[Any, Any, T]) -> T:
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        task.cancel()
        _cleaning_up.add(task)
        task.add_done_callback(_forget)
        raise
    except asyncio.CancelledError:  # the client went away: stop the work too
        task.cancel()
        raise


def _forget(task: asyncio.Task[Any]) -> None:
    _cleaning_up.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
