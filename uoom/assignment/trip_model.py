"""The set-partitioning model of dispatch with trips, on CP-SAT (written straight into the proto).

One Boolean per option; per order at most one option (none = its fallback, whose cost is folded
into the coefficients); per channel its free slots (a single or a pair holds one); per open trip one
joiner. Same parameters as the pure assignment (cpsat.py): one worker, no presolve, no probing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from ortools.sat.python import cp_model, cp_model_helper

from uoom.assignment.cpsat import PARAMETERS, SOLVED
from uoom.assignment.model import Status


class Option(NamedTuple):  # a tuple: dispatch makes a few hundred per call, a dataclass costs 3x more
    """`orders` (1 or 2 indices) on channel index `channel`; `trip` >= 0: joins that open trip (no
    new slot); `cost` in milli-points (a join: what it adds to the trip)."""

    orders: tuple[int, ...]
    channel: int
    trip: int
    cost: int


def solve_options(
    options: Sequence[Option],
    fallback: Sequence[int],
    free: Sequence[int],
    trips: int,
    hint: Sequence[int],
    time_limit_s: float,
) -> tuple[Status, list[Option], int, int]:
    """(status, the options taken, objective, proven lower bound), objectives in milli-points.
    `hint`: indices of a feasible set of options, returned as FALLBACK if CP-SAT finds nothing better."""
    constant = sum(fallback)
    hinted = [options[k] for k in hint]
    hinted_total = constant + sum(o.cost - sum(fallback[i] for i in o.orders) for o in hinted)
    if time_limit_s <= 0:
        return "FALLBACK", hinted, hinted_total, 0
    model = cp_model.CpModel()
    proto = model.proto
    per_order: list[list[int]] = [[] for _ in fallback]
    per_channel: list[list[int]] = [[] for _ in free]
    per_trip: list[list[int]] = [[] for _ in range(trips)]
    coefficients = []
    for k, o in enumerate(options):
        for i in o.orders:
            per_order[i].append(k)
        if o.trip >= 0:
            per_trip[o.trip].append(k)
        else:
            per_channel[o.channel].append(k)
        coefficients.append(o.cost - sum(fallback[i] for i in o.orders))
    for group in (*per_order, *per_trip):
        if len(group) > 1:
            proto.constraints.add().at_most_one.literals.extend(group)
    for j, members in enumerate(per_channel):
        if len(members) > free[j]:
            linear = proto.constraints.add().linear
            linear.vars.extend(members)
            linear.coeffs.extend([1] * len(members))
            linear.domain.extend((0, free[j]))
    boolean = cp_model_helper.IntegerVariableProto()
    boolean.domain.extend((0, 1))
    proto.variables.extend([boolean] * len(options))
    proto.objective.vars.extend(range(len(options)))
    proto.objective.coeffs.extend(coefficients)
    proto.solution_hint.vars.extend(range(len(options)))
    taken = set(hint)
    proto.solution_hint.values.extend(1 if k in taken else 0 for k in range(len(options)))
    solver = cp_model.CpSolver()
    for key, value in PARAMETERS.items():
        setattr(solver.parameters, key, value)
    solver.parameters.max_time_in_seconds = time_limit_s
    status = solver.solve(model)
    if status not in SOLVED:
        return "FALLBACK", hinted, hinted_total, 0
    values = solver.response_proto.solution
    total = constant + round(solver.objective_value)
    bound = constant + math.ceil(solver.best_objective_bound - 1e-6)
    if total > hinted_total:
        return "FEASIBLE", hinted, hinted_total, min(bound, hinted_total)
    picked = [o for o, v in zip(options, values, strict=True) if v]
    return ("OPTIMAL" if SOLVED[status] == "OPTIMAL" else "FEASIBLE"), picked, total, min(bound, total)
