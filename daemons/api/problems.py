"""The API's problem+json answers: the daemons' one handler (daemons.kit.problems) with the
order database as the service whose outage is a 503, plus the domain's refusals below."""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from daemons.kit import problems
from daemons.kit.problems import PROBLEM_JSON, Problem, problem_response
from uoom.domain.errors import (
    IdempotencyConflict,
    IllegalTransition,
    OrderError,
    OrderNotFound,
    UnknownRestaurant,
    VersionConflict,
)

__all__ = ["PROBLEM_JSON", "Problem", "install", "install_order_errors", "order_problem", "problem_response"]
log = logging.getLogger("uoom.api")
# A restart of PostgreSQL shows as any of these: refused or reset connections, "the database system
# is starting up / shutting down" (CannotConnectNow, AdminShutdown, CrashShutdown: operator
# intervention), "too many connections" while every client reconnects at once, and asyncpg's
# "another operation is in progress" when the pool resets a connection the server dropped mid-query.
UNAVAILABLE = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
               asyncpg.InternalClientError, asyncpg.exceptions.OperatorInterventionError,
               asyncpg.exceptions.TooManyConnectionsError)  # fmt: skip


def install(app: FastAPI) -> None:
    problems.install(app, log, unavailable=UNAVAILABLE,
                     unavailable_detail="the order database is unavailable; retry later")  # fmt: skip


# -- the domain's refusals (uoom/domain/errors.py): the one place they become HTTP answers --------

_ORDER_ERRORS: dict[type[OrderError], tuple[int, str]] = {
    OrderNotFound: (404, "Not found"),
    VersionConflict: (412, "Precondition failed"),
    IllegalTransition: (409, "Illegal transition"),
    IdempotencyConflict: (409, "Conflict"),
    UnknownRestaurant: (422, "Invalid request"),
}


def order_problem(exc: OrderError) -> Problem:
    status, title = _ORDER_ERRORS[type(exc)]
    if isinstance(exc, VersionConflict):
        return Problem(status, title, str(exc), currentVersion=exc.current)
    if isinstance(exc, IllegalTransition):
        return Problem(status, title, str(exc), allowedNext=[str(s) for s in exc.allowed])
    if isinstance(exc, UnknownRestaurant):  # answered like a validation error of the field
        errors = [{"field": "restaurantId", "message": "no active restaurant has this id"}]
        return Problem(status, title, "unknown restaurant: restaurantId", errors=errors)
    return Problem(status, title, str(exc))


def install_order_errors(app: FastAPI) -> None:
    @app.exception_handler(OrderError)
    async def _refused(request: Request, exc: OrderError) -> JSONResponse:
        p = order_problem(exc)
        return problem_response(request, p.status, p.title, p.detail, p.headers, **p.extra)
