"""POST /optimize: the contract (uoom.contracts.optimizer) in, a micro-batched solve, the contract out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from uoom.contracts.optimizer import OptimizeRequest, OptimizeResponse

router = APIRouter()


@router.post("/optimize", response_model=OptimizeResponse)
async def optimize(body: OptimizeRequest, request: Request) -> Response:
    """Assign each order to one channel (or the explicit fallback); never an error for a hard instance."""
    state = request.app.state
    deadline = body.deadline_ms or state.settings.optimizer_deadline_ms
    mine, result = await state.parts["batcher"].submit(body.deliveries(), deadline)
    answer = OptimizeResponse.of(mine, result.status, result.solve_ms)
    return Response(answer.model_dump_json(), media_type="application/json")
