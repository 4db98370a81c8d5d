"""The exact optimum, as a min-cost flow: a cost table with capacities is a transportation problem.

source -> delivery (1 unit) -> channel (pair cost) -> sink (free slots), and delivery -> sink at the
fallback cost. Integral and polynomial, so it is the reference CP-SAT is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

from ortools.graph.python import min_cost_flow

from uoom.assignment.costs import NO_CHANNEL, CostTable, build_cost_table, to_result
from uoom.assignment.model import Delivery, Result
from uoom.domain.channels import Channel, Weights


def exact_choice(table: CostTable) -> list[int]:
    """The optimal choice; ValueError when some delivery has no option at all."""
    n, m = len(table.options), len(table.free)
    source, sink = n + m, n + m + 1
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs: list[tuple[int, int]] = []  # (arc, channel) of each delivery -> channel arc, in arc order
    for i, row in enumerate(table.options):
        flow.add_arc_with_capacity_and_unit_cost(source, i, 1, 0)
        fallback = table.fallback[i]
        if fallback is not None:
            flow.add_arc_with_capacity_and_unit_cost(i, sink, 1, fallback)
        for j, c in row:
            arcs.append((flow.add_arc_with_capacity_and_unit_cost(i, n + j, 1, c), j))
    for j, free in enumerate(table.free):
        flow.add_arc_with_capacity_and_unit_cost(n + j, sink, free, 0)
    flow.set_node_supply(source, n)
    flow.set_node_supply(sink, -n)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise ValueError(f"no feasible assignment (min-cost flow status {status})")
    choice = [NO_CHANNEL] * n
    for arc, j in arcs:
        if flow.flow(arc):
            choice[flow.tail(arc)] = j
    return choice


def exact(
    deliveries: Sequence[Delivery], channels: Sequence[Channel], weights: Weights, fallback_penalty: float
) -> Result:
    start = perf_counter()
    table = build_cost_table(deliveries, channels, weights, fallback_penalty)
    return to_result(table, exact_choice(table), "OPTIMAL", start, deliveries, channels, fallback_penalty)
