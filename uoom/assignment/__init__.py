"""Channel assignment: the pure model and its solvers, no service (`solve` is the entry point).

Importing this package imports OR-Tools (~0.4 s): a CLI command should import it inside itself.
Code that needs only `Channel` or `Weights` imports them from `uoom.domain.channels`, which does not.
"""

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
from uoom.domain.channels import CRITERIA, Channel, Weights

__all__ = [
    "CRITERIA",
    "DEFAULT_DEADLINE_MS",
    "DEFAULT_FALLBACK_PENALTY",
    "DEFAULT_WEIGHTS",
    "Assignment",
    "Channel",
    "CurrentAssignment",
    "Delivery",
    "Reassignment",
    "Result",
    "Status",
    "Weights",
    "exact",
    "greedy",
    "reoptimize",
    "solve",
    "static_priority",
]
