"""Channel assignment: the pure model and its solvers, no service (`solve`: one order at a time or a
batch, exact min-cost flow; `dispatch`: with two-order trips, docs/dispatch.md).

Importing this package imports OR-Tools (~0.4 s): a CLI command should import it inside itself.
Code that needs only `Channel` or `Weights` imports them from `uoom.domain.channels`, which does not.
"""

from uoom.assignment.dispatch import OpenTrip, Placement, Plan, dispatch
from uoom.assignment.engine import (
    DEFAULT_DEADLINE_MS,
    DEFAULT_FALLBACK_PENALTY,
    DEFAULT_WEIGHTS,
    greedy,
    solve,
)
from uoom.assignment.exact import exact
from uoom.assignment.model import Assignment, CurrentAssignment, Delivery, Reassignment, Result, Status
from uoom.assignment.reopt import reoptimize
from uoom.assignment.static import static_priority
from uoom.assignment.trips import Bundling, TripOrder
from uoom.domain.channels import CRITERIA, Channel, Weights

__all__ = [
    "CRITERIA",
    "DEFAULT_DEADLINE_MS",
    "DEFAULT_FALLBACK_PENALTY",
    "DEFAULT_WEIGHTS",
    "Assignment",
    "Bundling",
    "Channel",
    "CurrentAssignment",
    "Delivery",
    "OpenTrip",
    "Placement",
    "Plan",
    "Reassignment",
    "Result",
    "Status",
    "TripOrder",
    "Weights",
    "dispatch",
    "exact",
    "greedy",
    "reoptimize",
    "solve",
    "static_priority",
]
