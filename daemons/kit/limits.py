"""A request-body limit as pure ASGI middleware (BaseHTTPMiddleware costs too much per request):
a declared Content-Length over the limit is refused before a byte is read, a chunked body once
what was read passes it. Either way a 413 problem body, and the app sees the client as gone."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from daemons.kit.problems import problem_response

Message = dict[str, Any]


class BodyLimit:
    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app, self.limit = app, max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        read, refused = 0, False

        async def limited() -> Message:
            nonlocal read, refused
            message: Message = await receive()
            read += len(message.get("body", b""))
            if read > self.limit and not refused:
                refused = True
                await self._refuse(scope, receive, send)
            return {"type": "http.disconnect"} if refused else message

        async def unless_refused(message: Message) -> None:
            if not refused:  # once the 413 went out, what the app answers is dropped
                await send(message)

        await self.app(scope, limited, unless_refused)

    async def _refuse(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = problem_response(Request(scope), 413, "Payload too large",
                                    f"request body over {self.limit} bytes")  # fmt: skip
        await response(scope, receive, send)
