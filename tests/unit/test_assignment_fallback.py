"""When the flow solver cannot answer (deadline spent, a crash), solve answers greedy's."""

from __future__ import annotations

import pytest

from uoom.assignment import Channel, Delivery, greedy, solve

CENTER = (40.73, -73.99)


def contested() -> tuple[list[Delivery], list[Channel]]:
    """Five orders all wanting one cheap channel of two slots: greedy is not optimal here."""
    cheap = Channel("cheap", "cheap", "own_fleet", 2, 1.0, 0.1, 20, 1, 10, 0.99)
    dear = Channel("dear", "dear", "partner", 2, 9.0, 2.0, 20, 1, 10, 0.90)
    orders = [Delivery(f"o{i}", CENTER, (CENTER[0] + (i + 1) * 0.5 / 111.32, CENTER[1])) for i in range(5)]
    return orders, [cheap, dear]


def test_a_solver_crash_returns_greedys_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(table: object) -> list[int]:
        raise RuntimeError("solver crashed")

    monkeypatch.setattr("uoom.assignment.engine.exact_choice", crash)
    orders, channels = contested()
    result = solve(orders, channels)
    assert result.status == "FALLBACK"
    assert result.assignments == greedy(orders, channels).assignments


def test_a_deadline_already_spent_returns_greedys_answer() -> None:
    orders, channels = contested()
    result = solve(orders, channels, deadline_ms=0)
    assert result.status == "FALLBACK"
    assert result.assignments == greedy(orders, channels).assignments


def test_the_contested_instance_really_needs_the_solver() -> None:
    orders, channels = contested()
    result = solve(orders, channels)
    assert result.status == "OPTIMAL"
    assert result.objective < greedy(orders, channels).objective
