"""The exact optimum, as a min-cost flow: a problem with capacities is a transportation problem.

source -> order (1 unit) -> channel (pair cost) -> sink (free slots), and order -> sink at the
fallback cost. Integral and polynomial, so it is the reference CP-SAT is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

from ortools.graph.python import min_cost_flow

from uoom.assignment.costs import FALLBACK, Problem, build_problem, objective, to_assignments
from uoom.assignment.model import Channel, Order, Result, Weights


def exact_choice(problem: Problem) -> list[int]:
    """The optimal choice; ValueError when some order has no option at all."""
    n, m = len(problem.options), len(problem.free)
    source, sink = n + m, n + m + 1
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs: list[tuple[int, int]] = []  # (order, channel) of each order -> channel arc, in arc order
    for i, row in enumerate(problem.options):
        flow.add_arc_with_capacity_and_unit_cost(source, i, 1, 0)
        fallback = problem.fallback[i]
        if fallback is not None:
            flow.add_arc_with_capacity_and_unit_cost(i, sink, 1, fallback)
        for j, c in row:
            arcs.append((flow.add_arc_with_capacity_and_unit_cost(i, n + j, 1, c), j))
    for j, free in enumerate(problem.free):
        flow.add_arc_with_capacity_and_unit_cost(n + j, sink, free, 0)
    flow.set_node_supply(source, n)
    flow.set_node_supply(sink, -n)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise ValueError(f"no feasible assignment (min-cost flow status {status})")
    choice = [FALLBACK] * n
    for arc, j in arcs:
        if flow.flow(arc):
            choice[flow.tail(arc)] = j
    return choice


def exact(orders: Sequence[Order], channels: Sequence[Channel], weights: Weights, fallback_penalty: float) -> Result:
    start = perf_counter()
    problem, distances = build_problem(orders, channels, weights, fallback_penalty)
    choice = exact_choice(problem)
    assignments = to_assignments(orders, channels, distances, choice, fallback_penalty)
    return Result(assignments, "OPTIMAL", (perf_counter() - start) * 1000, objective(problem, choice))
