"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from daemons.api.app import Resources


def resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


async def api_key(request: Request) -> str:
    return await resources(request).auth(request)
