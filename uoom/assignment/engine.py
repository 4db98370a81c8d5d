"""The entry points: `solve` (min-cost flow, never raises on a solver failure) and `greedy`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import perf_counter

from uoom.assignment.costs import CostTable, build_cost_table, to_result
from uoom.assignment.exact import exact_choice
from uoom.assignment.greedy import greedy_choice
from uoom.assignment.model import Delivery, Result, Status
from uoom.domain.channels import Channel, Weights

DEFAULT_WEIGHTS = Weights()
DEFAULT_DEADLINE_MS = 80.0
DEFAULT_FALLBACK_PENALTY = 25.0
# Left of the deadline for reading the answer back; CP-SAT (trips) also overshoots its limit a little.
MARGIN_S = 0.002

log = logging.getLogger(__name__)


def solve(
    deliveries: Sequence[Delivery],
    channels: Sequence[Channel],
    weights: Weights = DEFAULT_WEIGHTS,
    deadline_ms: float = DEFAULT_DEADLINE_MS,
    fallback_penalty: float = DEFAULT_FALLBACK_PENALTY,
) -> Result:
    """One assignment per delivery (input order), within `deadline_ms` of wall clock, build included.

    OPTIMAL: the exact optimum, by min-cost flow (a pure assignment with capacities is a transportation
    problem: exact.py; ~10x faster than CP-SAT was at 200 x 12). FALLBACK: greedy's answer, when the
    deadline was spent before the solve or the flow solver failed. Raises only on bad input.
    """
    start = perf_counter()
    table = build_cost_table(deliveries, channels, weights, fallback_penalty)
    status, choice = _flow_else_greedy(table, deadline_ms / 1000 - (perf_counter() - start) - MARGIN_S)
    return to_result(table, choice, status, start, deliveries, channels, fallback_penalty)


def _flow_else_greedy(table: CostTable, budget_s: float) -> tuple[Status, list[int]]:
    if budget_s <= 0:
        return "FALLBACK", greedy_choice(table)
    try:
        return "OPTIMAL", exact_choice(table)
    except Exception:  # a solver failure must never fail the request: greedy answers instead
        log.exception("min-cost flow failed on %d deliveries x %d channels", len(table.options), len(table.free))
        return "FALLBACK", greedy_choice(table)


def greedy(
    deliveries: Sequence[Delivery],
    channels: Sequence[Channel],
    weights: Weights = DEFAULT_WEIGHTS,
    fallback_penalty: float = DEFAULT_FALLBACK_PENALTY,
) -> Result:
    """Cheapest (by the weighted score) option with a free slot, delivery by delivery; status FEASIBLE."""
    start = perf_counter()
    table = build_cost_table(deliveries, channels, weights, fallback_penalty)
    return to_result(table, greedy_choice(table), "FEASIBLE", start, deliveries, channels, fallback_penalty)
