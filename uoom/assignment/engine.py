"""The entry points: `solve` (CP-SAT, never raises on a solver failure) and `greedy`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import perf_counter

from uoom.assignment.costs import build_problem, objective, to_assignments
from uoom.assignment.cpsat import cpsat_choice
from uoom.assignment.greedy import greedy_choice
from uoom.assignment.model import Channel, Order, Result, Status, Weights

DEFAULT_WEIGHTS = Weights()
DEFAULT_DEADLINE_MS = 80.0
DEFAULT_FALLBACK_PENALTY = 25.0
# Left of the deadline for reading the answer back; CP-SAT also overshoots its limit a little.
MARGIN_S = 0.002

log = logging.getLogger(__name__)


def solve(
    orders: Sequence[Order],
    channels: Sequence[Channel],
    weights: Weights = DEFAULT_WEIGHTS,
    deadline_ms: float = DEFAULT_DEADLINE_MS,
    fallback_penalty: float = DEFAULT_FALLBACK_PENALTY,
) -> Result:
    """One assignment per order (input order), within `deadline_ms` of wall clock, build included.

    OPTIMAL: proven optimal (often without CP-SAT: see reduce.py). FEASIBLE: CP-SAT ran out of time
    with a solution, returned if no worse than greedy's (else greedy's). FALLBACK: CP-SAT had no
    solution (timed out, UNKNOWN, infeasible or failed): greedy's answer. Raises only on bad input.
    """
    start = perf_counter()
    problem, distances = build_problem(orders, channels, weights, fallback_penalty)
    status: Status = "FALLBACK"
    try:
        budget = deadline_ms / 1000 - (perf_counter() - start) - MARGIN_S
        name, choice = cpsat_choice(problem, budget)
    except Exception:  # a solver failure must never fail the request: greedy answers instead
        log.exception("CP-SAT failed on %d orders x %d channels", len(orders), len(channels))
        name, choice = "ERROR", None
    if choice is not None and name == "OPTIMAL":
        status = "OPTIMAL"
    elif choice is not None and name == "FEASIBLE":
        status = "FEASIBLE"
        fallback = greedy_choice(problem)
        if objective(problem, fallback) < objective(problem, choice):
            choice = fallback
    else:
        choice = greedy_choice(problem)
    assignments = to_assignments(orders, channels, distances, choice, fallback_penalty)
    return Result(assignments, status, (perf_counter() - start) * 1000, objective(problem, choice))


def greedy(
    orders: Sequence[Order],
    channels: Sequence[Channel],
    weights: Weights = DEFAULT_WEIGHTS,
    deadline_ms: float = DEFAULT_DEADLINE_MS,
    fallback_penalty: float = DEFAULT_FALLBACK_PENALTY,
) -> Result:
    """Cheapest (by the weighted score) option with a free slot, order by order; status FEASIBLE.
    `deadline_ms` is accepted for a drop-in signature: greedy is linear and ignores it."""
    start = perf_counter()
    problem, distances = build_problem(orders, channels, weights, fallback_penalty)
    choice = greedy_choice(problem)
    assignments = to_assignments(orders, channels, distances, choice, fallback_penalty)
    return Result(assignments, "FEASIBLE", (perf_counter() - start) * 1000, objective(problem, choice))
