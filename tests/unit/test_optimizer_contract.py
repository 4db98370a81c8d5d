"""The optimizer contract (DESIGN.md, "Optimizer service"): the documented JSON round-trips through
the models unchanged, money is a Decimal in Python and a number on the wire, the limits hold."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from uoom.assignment import Assignment, Delivery
from uoom.assignment.model import Ride
from uoom.contracts.optimizer import OptimizeRequest, OptimizeResponse

ORDER: dict[str, Any] = {
    "orderId": "a",
    "pickup": {"latitude": 40.754, "longitude": -73.984},
    "dropoff": {"latitude": 40.763, "longitude": -73.984},
    "value": 30.5,
    "readyAt": 300.0,
    "restaurantId": "6f1c2b1e-0000-4c38-9a53-5d8f2b6c0e11",
}
REQUEST: dict[str, Any] = {
    "orders": [
        ORDER,
        {
            "orderId": "b",
            "pickup": {"latitude": 40.754, "longitude": -73.984},
            "dropoff": {"latitude": 40.78, "longitude": -73.97},
            "value": 12.0,
            "readyAt": None,
            "restaurantId": None,
        },
    ],
    "deadlineMs": 50.0,
}
RESPONSE = {
    "assignments": [
        {
            "orderId": "a",
            "channelId": "bikes",
            "cost": 4.2,
            "etaSeconds": 1260,
            "tripId": "t-1",
            "coRiderId": "c",
            "pickupInS": 600.0,
            "coRiderCost": 2.15,
            "coRiderEtaSeconds": 1100,
        },
        {
            "orderId": "b",
            "channelId": None,
            "cost": 25.0,
            "etaSeconds": None,
            "tripId": None,
            "coRiderId": None,
            "pickupInS": None,
            "coRiderCost": None,
            "coRiderEtaSeconds": None,
        },
    ],
    "status": "OPTIMAL",
    "solveMs": 1.235,
}


def test_the_documented_request_round_trips_unchanged() -> None:
    request = OptimizeRequest.model_validate_json(json.dumps(REQUEST))
    assert json.loads(request.model_dump_json()) == REQUEST
    assert request.orders[0].value == Decimal("30.5")


def test_the_documented_response_round_trips_unchanged() -> None:
    response = OptimizeResponse.model_validate_json(json.dumps(RESPONSE))
    assert json.loads(response.model_dump_json()) == RESPONSE
    assert response.assignments[0].cost == Decimal("4.2")


def test_a_request_becomes_the_deliveries_the_solver_takes() -> None:
    deliveries = OptimizeRequest.model_validate(REQUEST).deliveries()
    assert deliveries == [
        Delivery("a", (40.754, -73.984), (40.763, -73.984), 30.5, 300.0),
        Delivery("b", (40.754, -73.984), (40.78, -73.97), 12.0, None),
    ]


def test_a_solve_becomes_the_documented_response() -> None:
    assignments = (Assignment("a", "bikes", Decimal("4.20"), 1260), Assignment("b", None, Decimal("25.00"), None))
    response = OptimizeResponse.of(assignments, "OPTIMAL", 1.23456, {"a": Ride("t-1", "c", 600.0, 2.1549, 1099.6)})
    assert json.loads(response.model_dump_json()) == RESPONSE
    assert response.assignment_of("b") == response.assignments[1]
    assert response.assignment_of("c") is None


def test_the_optional_fields_may_be_left_out() -> None:
    order = {k: v for k, v in ORDER.items() if k not in ("value", "readyAt", "restaurantId")}
    request = OptimizeRequest.model_validate({"orders": [order]})
    assert (request.orders[0].value, request.orders[0].ready_at, request.deadline_ms) == (Decimal(0), None, None)
    assert request.restaurants() == [None]


def test_an_answer_of_an_older_optimizer_has_no_trip() -> None:
    old = {"orderId": "a", "channelId": "bikes", "cost": 4.2, "etaSeconds": 1260}
    response = OptimizeResponse.model_validate({**RESPONSE, "assignments": [old]})
    assert (response.assignments[0].trip_id, response.assignments[0].co_rider_id) == (None, None)
    assert response.assignments[0].pickup_in_s is None


def test_a_trip_without_the_co_riders_share_still_parses() -> None:
    """An optimizer older than coRiderCost/coRiderEtaSeconds: the first rider of a join keeps its own."""
    old = {k: v for k, v in RESPONSE["assignments"][0].items() if k not in ("coRiderCost", "coRiderEtaSeconds")}
    mine = OptimizeResponse.model_validate({**RESPONSE, "assignments": [old]}).assignments[0]
    assert (mine.trip_id, mine.co_rider_cost, mine.co_rider_eta_seconds) == ("t-1", None, None)


@pytest.mark.parametrize("change", [{"coRiderCost": -0.01}, {"coRiderCost": 1e9}, {"coRiderEtaSeconds": -1}])
def test_a_co_riders_share_outside_the_columns_is_no_answer(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OptimizeResponse.model_validate({**RESPONSE, "assignments": [{**RESPONSE["assignments"][0], **change}]})


def test_a_request_names_each_orders_restaurant() -> None:
    assert OptimizeRequest.model_validate(REQUEST).restaurants() == ["6f1c2b1e-0000-4c38-9a53-5d8f2b6c0e11", None]


def test_the_response_ignores_fields_it_does_not_know_yet() -> None:
    response = OptimizeResponse.model_validate({**RESPONSE, "solver": "cp-sat"})
    assert response.status == "OPTIMAL"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"orders": []}, "orders"),
        ({"orders": [{**ORDER, "pickup": {"latitude": 91, "longitude": 0}}]}, "latitude"),
        ({"orders": [{**ORDER, "value": -1}]}, "value"),
        ({"orders": [{**ORDER, "readyAt": 86401}]}, "readyAt"),
        ({"orders": [{**ORDER, "orderId": ""}]}, "orderId"),
        ({"orders": [{**ORDER, "restaurantId": ""}]}, "restaurantId"),
        ({"orders": [{**ORDER, "colour": "red"}]}, "colour"),
        ({"deadlineMs": 0}, "deadlineMs"),
        ({"deadlineMs": 5001}, "deadlineMs"),
    ],
)
def test_a_request_outside_the_limits_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OptimizeRequest.model_validate({**REQUEST, **change})
    assert field in str(caught.value)


def test_at_most_500_orders_per_request() -> None:
    assert len(OptimizeRequest.model_validate({"orders": [ORDER] * 500}).orders) == 500
    with pytest.raises(ValidationError):
        OptimizeRequest.model_validate({"orders": [ORDER] * 501})
