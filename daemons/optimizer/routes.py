"""POST /optimize: the contract (uoom.contracts.optimizer) in, a micro-batched solve, the contract out.

Only for a caller presenting the optimizer's key (uoom/tokens.py); the body is bounded (413, in
the app's middleware) and so is the queue (503 at once when full); a caller that hangs up has
nothing solved for it, one whose deadline passed while it waited no solver time (batcher.py).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from daemons.kit.problems import Problem
from daemons.optimizer.batcher import QueueFull
from uoom.contracts.optimizer import OptimizeRequest, OptimizeResponse

T = TypeVar("T")
CLIENT_CLOSED_REQUEST = 499  # nobody reads it: the caller has gone
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
bearer = HTTPBearer(auto_error=False, description="UOOM_OPTIMIZER_TOKEN, or the key in UOOM_HOME/optimizer.token")


async def authorized(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:  # fmt: skip
    presented = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(presented, request.app.state.token):
        raise Problem(401, "Unauthorized", "send the optimizer's key: Authorization: Bearer <key>",
                      {"WWW-Authenticate": "Bearer"})  # fmt: skip


router = APIRouter(dependencies=[Depends(authorized)])


class CallerGone(Exception):
    pass


@router.post("/optimize", response_model=OptimizeResponse, responses={
    400: {"description": "Unreadable body (not JSON in UTF-8)", **PROBLEM},
    401: {"description": "No or a wrong key", **PROBLEM},
    413: {"description": "Body too large", **PROBLEM},
    422: {"description": "Invalid request", **PROBLEM},
    503: {"description": "Busy: too many orders wait for a solve", **PROBLEM},
})  # fmt: skip
async def optimize(body: OptimizeRequest, request: Request) -> Response:
    """Assign each order to one channel (or the explicit fallback); never an error for a hard instance."""
    state = request.app.state
    deadline = body.deadline_ms or state.settings.optimizer_deadline_ms
    try:
        work = state.parts["batcher"].submit(body.deliveries(), deadline, body.restaurants())
        mine, result, rides = await _while_connected(request, work)
    except QueueFull as exc:
        raise Problem(503, "Service unavailable", f"busy: {exc}; retry later", {"Retry-After": "1"}) from None
    except CallerGone:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    answer = OptimizeResponse.of(mine, result.status, result.solve_ms, rides)
    return Response(answer.model_dump_json(), media_type="application/json")


async def _while_connected(request: Request, work: Awaitable[T]) -> T:
    """`work`, cancelled if the client disconnects first (CallerGone)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            if gone.exception() is not None:  # no way to tell: wait for the work
                return await task
            raise CallerGone  # the caller hung up first (the finally cancels the work)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
    if task.cancelled():
        raise CallerGone
    return task.result()


async def _disconnect(request: Request) -> None:
    """Returns when the client hangs up (the body has been read: the next message says so)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
