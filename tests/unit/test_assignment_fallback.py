"""When CP-SAT does not deliver (timeout, UNKNOWN, infeasible, a crash), solve answers greedy's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ortools.sat.python import cp_model

from uoom.assignment import Channel, Delivery, greedy, solve
from uoom.assignment import cpsat as cpsat_module

CENTER = (40.73, -73.99)


def contested() -> tuple[list[Delivery], list[Channel]]:
    """Five orders all wanting one cheap slot: the reduction cannot settle it, CP-SAT must run."""
    cheap = Channel("cheap", "cheap", "own_fleet", 2, 1.0, 0.1, 20, 1, 10, 0.99)
    dear = Channel("dear", "dear", "partner", 2, 9.0, 2.0, 20, 1, 10, 0.90)
    orders = [Delivery(f"o{i}", CENTER, (CENTER[0] + (i + 1) * 0.5 / 111.32, CENTER[1])) for i in range(5)]
    return orders, [cheap, dear]


class FakeSolver:
    """Stands in for cp_model.CpSolver: answers `status` (or raises) with an empty solution."""

    def __init__(self, status: object) -> None:
        self.parameters = SimpleNamespace()
        self.status = status
        self.response_proto = SimpleNamespace(solution=[])

    def solve(self, model: object) -> object:
        if isinstance(self.status, Exception):
            raise self.status
        return self.status

    def status_name(self, status: object) -> str:
        return str(status)


def use_fake_solver(monkeypatch: pytest.MonkeyPatch, status: object) -> None:
    fake_module = SimpleNamespace(CpSolver=lambda: FakeSolver(status), CpModel=cp_model.CpModel)
    monkeypatch.setattr(cpsat_module, "cp_model", fake_module)


@pytest.mark.parametrize(
    "status",
    [cp_model.UNKNOWN, cp_model.INFEASIBLE, cp_model.MODEL_INVALID, RuntimeError("solver crashed")],
    ids=["unknown", "infeasible", "model-invalid", "exception"],
)
def test_solver_without_a_solution_returns_greedys_answer(monkeypatch: pytest.MonkeyPatch, status: object) -> None:
    orders, channels = contested()
    use_fake_solver(monkeypatch, status)
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


def test_one_order_never_reaches_the_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    orders, channels = contested()
    use_fake_solver(monkeypatch, RuntimeError("must not be called"))
    result = solve(orders[:1], channels, deadline_ms=0)
    assert result.status == "OPTIMAL"
    assert result.assignments[0].channel_id == "cheap"


def test_a_feasible_answer_worse_than_greedy_is_replaced_by_greedys(monkeypatch: pytest.MonkeyPatch) -> None:
    orders, channels = contested()

    class AllZeros(FakeSolver):
        def solve(self, model: object) -> object:
            variables = model.proto.variables  # type: ignore[attr-defined]
            self.response_proto = SimpleNamespace(solution=[0] * len(variables))
            return cp_model.FEASIBLE

    fake_module = SimpleNamespace(CpSolver=lambda: AllZeros(cp_model.FEASIBLE), CpModel=cp_model.CpModel)
    monkeypatch.setattr(cpsat_module, "cp_model", fake_module)
    result = solve(orders, channels)  # all zeros: every contested order falls back, far worse
    assert result.status == "FEASIBLE"
    assert result.assignments == greedy(orders, channels).assignments
