"""RFC 9457 problem bodies: the one problem+json handler of the daemons' HTTP apps. Every error
answer is `{type, title, status, detail, instance, ...}` with `application/problem+json`; bad
input is a 422 naming each field, never a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from daemons.kit.logs import describe

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise to answer with a problem body."""

    def __init__(self, status: int, title: str, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:  # fmt: skip
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers, self.extra = headers or {}, extra


def problem_response(request: Request, status: int, title: str, detail: str,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:  # fmt: skip
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": request.url.path, **extra}  # fmt: skip
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _allowed(request: Request) -> str:
    """The methods of the path asked for. Starlette's 405 names only the first matching route's:
    `/orders/{id}/status` has a GET and a PATCH route, and `/orders/status:batch` (POST) also
    matches `/orders/{id}` (GET). The most specific path template (fewest parameters) is the one
    the document lists the path under."""
    matching = [r for r in request.app.router.routes if r.matches(request.scope)[0] != Match.NONE]
    fewest = min((getattr(r, "path", "").count("{") for r in matching), default=0)
    specific = [r for r in matching if getattr(r, "path", "").count("{") == fewest]
    return ", ".join(sorted({m for r in specific for m in getattr(r, "methods", None) or ()}))


def install(app: FastAPI, log: logging.Logger, *, unavailable: tuple[type[Exception], ...] = (),
            unavailable_detail: str = "a service this daemon needs is unavailable; retry later") -> None:  # fmt: skip
    """Problem bodies for `Problem`, invalid requests (422), HTTP errors, the `unavailable`
    exception types (503 + Retry-After) and anything unexpected (500, logged)."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.title, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem_response(request, 422, "Invalid request", f"invalid field(s): {fields}",
                                errors=errors)  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed(request)}
        return problem_response(request, exc.status_code, str(exc.detail), str(exc.detail), headers)

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable: %s", describe(exc))
        return problem_response(request, 503, "Service unavailable", unavailable_detail,
                                {"Retry-After": "1"})  # fmt: skip

    # Handlers for specific classes answer and keep the connection; the catch-all `Exception`
    # handler runs in Starlette's ServerErrorMiddleware, which re-raises, so uvicorn would log a
    # traceback and drop the client's keep-alive connection after every 503.
    for kind in unavailable:
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, unavailable):
            return await _unavailable(request, exc)
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(request, 500, "Internal error", "unexpected error; it was logged")
