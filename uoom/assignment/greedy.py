"""Greedy: orders in input order, each takes its cheapest option that still has a free slot."""

from __future__ import annotations

from uoom.assignment.costs import FALLBACK, Problem


def greedy_choice(problem: Problem) -> list[int]:
    """Always an answer: an order that may not fall back but finds nothing gets FALLBACK anyway
    (only re-optimization builds such orders, and it never asks greedy)."""
    remaining = list(problem.free)
    choice = []
    for row, fallback in zip(problem.options, problem.fallback, strict=True):
        best_j, best_c = FALLBACK, fallback
        for j, c in row:
            if remaining[j] > 0 and (best_c is None or c < best_c):
                best_j, best_c = j, c
        if best_j != FALLBACK:
            remaining[best_j] -= 1
        choice.append(best_j)
    return choice
