"""Exact reduction of a cost table to its contested core, before any solver runs.

A channel is *slack* when the orders that could still end up on it are no more than its free slots:
it can never fill up, so every order may take its best slack channel (or the fallback) without
touching anyone else. That best "outside" option makes every pair on a *binding* channel that is
not strictly cheaper irrelevant; dropping those pairs lowers the counts, which can make more
channels slack; repeat to a fixpoint. What is left (orders with a binding pair cheaper than their
outside option) is the only part that needs a solver; everything else is fixed, and optimal.
When no order is contested the argmin of each order is the optimum: one order, or a batch where
no channel is short of slots, never reaches CP-SAT; elsewhere CP-SAT gets the contested part only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from uoom.assignment.costs import NO_CHANNEL, CostTable

NO_OUTSIDE = -2  # the delivery must take one of its core pairs (no fallback, no slack channel)


@dataclass(slots=True)
class Core:
    """Delivery `deliveries[k]` is contested with `pairs[k]`: (channel, cost - outside cost), and
    `outside[k]` its choice when no pair is taken (costs are absolute when it is NO_OUTSIDE).
    `choice` holds the outside option of every delivery; `capacity` the free slots of each binding
    channel."""

    deliveries: list[int]
    pairs: list[list[tuple[int, int]]]
    outside: list[int]
    choice: list[int]
    capacity: dict[int, int]


def contested_core(table: CostTable, *, reduce: bool = True) -> Core | None:
    """The core, or None if some delivery has no option at all. `reduce=False` keeps every pair and
    a capacity constraint on every channel (the plain model, for comparison)."""
    options, fallback, free = table.options, table.fallback, table.free
    m = len(free)
    if reduce:
        counts = [0] * m
        for row in options:
            for j, _ in row:
                counts[j] += 1
        binding = {j for j in range(m) if counts[j] > free[j]}
    else:
        binding = set(range(m))
    outside = [NO_CHANNEL if f is not None else NO_OUTSIDE for f in fallback]
    outside_cost = list(fallback)
    while True:
        relevant = []
        counts = [0] * m
        for i, row in enumerate(options):
            # Only a strictly cheaper slack channel replaces the outside option: on a tie the delivery
            # keeps the one it had, so a channel that just turned slack gains no uncounted order.
            best_j, best_c = outside[i], outside_cost[i]
            for j, c in row:
                if j not in binding and (best_c is None or c < best_c):
                    best_j, best_c = j, c
            rel = [(j, c) for j, c in row if j in binding and (best_c is None or c < best_c)]
            if best_j == NO_OUTSIDE and not rel:
                return None
            if best_j >= 0:
                counts[best_j] += 1
            for j, _ in rel:
                counts[j] += 1
            outside[i], outside_cost[i] = best_j, best_c
            relevant.append(rel)
        narrowed = {j for j in binding if counts[j] > free[j]} if reduce else binding
        if narrowed == binding:
            break
        binding = narrowed
    slack_use = Counter(j for j in outside if j >= 0)
    if any(slack_use[j] > free[j] for j in slack_use):  # the invariant above; never trade it for speed
        return contested_core(table, reduce=False)
    core = Core([], [], [], outside, {j: free[j] for j in binding})
    for i, rel in enumerate(relevant):
        if rel:
            base = outside_cost[i] or 0
            core.deliveries.append(i)
            core.pairs.append([(j, c - base) for j, c in rel])
            core.outside.append(outside[i])
    return core
