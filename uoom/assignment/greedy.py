"""Greedy: deliveries in input order, each takes its cheapest option that still has a free slot."""

from __future__ import annotations

from uoom.assignment.costs import NO_CHANNEL, CostTable


def greedy_choice(table: CostTable) -> list[int]:
    """Always an answer: a delivery that may not fall back but finds nothing gets NO_CHANNEL anyway
    (only re-optimization builds such deliveries, and it never asks greedy)."""
    remaining = list(table.free)
    choice = []
    for row, fallback in zip(table.options, table.fallback, strict=True):
        best_j, best_c = NO_CHANNEL, fallback
        for j, c in row:
            if remaining[j] > 0 and (best_c is None or c < best_c):
                best_j, best_c = j, c
        if best_j != NO_CHANNEL:
            remaining[best_j] -= 1
        choice.append(best_j)
    return choice
