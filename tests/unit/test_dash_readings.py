"""How the dashboard reads what the daemons answer (tui/readings.py, tui/assemble.py, tui/model.py),
from documents built here in the shape of docs/metrics.md: no service."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from rich.style import Style

from daemons.api.metrics import ApiMetrics
from tui.assemble import assemble
from tui.model import BREACH, DEGRADED, DOWN, IDLE, OK, UNKNOWN, UP, WARN, level
from tui.readings import (
    NOT_ASKED,
    Seen,
    daemon_health,
    group_latency,
    response_totals,
    route_group,
    status_mix,
    store_health,
)
from tui.trends import Trends
from tui.widgets.optimizer import rounds
from uoom.config import Settings


def entry(count: int, p99: float | None, rate: float = 1.0) -> dict[str, Any]:
    return {"total": count, "count": count, "ratePerSecond": rate, "p50": p99 and p99 / 4,
            "p95": p99 and p99 / 2, "p99": p99, "max": p99}  # fmt: skip


def api_document(responses: dict[str, dict[str, int]], **latency: dict[str, Any]) -> dict[str, Any]:
    return {
        "service": "api", "status": "ok", "problems": [], "version": "0.1.0", "uptimeSeconds": 75.0,
        "dependencies": {"postgres": {"up": True, "error": None}, "kafka": {"up": True, "error": None}},
        "latency": {
            "POST /api/orders": entry(10, 40.0, 0.5),
            "GET /api/orders/{order_id}/status": entry(300, 4.5, 5.0),
            "GET /api/orders/{order_id}": entry(5, 9.0, 0.2),
            "GET /api/customers/{customer_id}/orders": entry(2, 30.0, 0.1),
            "GET /api/metrics": entry(60, 900.0, 1.0),  # the dashboard's own polls
            "create.assign": entry(10, 35.0),
            "eventLoopLag": entry(1200, 2.0),
            **latency,
        },
        "api": {"assignment": {"fallbackRate": 0.25, "breaker": "closed"}, "responses": responses},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("key", "group"),
    [
        ("POST /api/orders", "create"),
        ("GET /api/orders/{order_id}/status", "status"),
        ("POST /api/orders/status:batch", "batch"),
        ("PATCH /api/orders/{order_id}/status", "other"),
        ("GET unmatched", "other"),
        ("GET /api/metrics", None),
        ("GET /healthz", None),
        ("create.assign", None),
        ("eventLoopLag", None),
        ("gcPause.gen0", None),
    ],
)
def test_route_groups(key: str, group: str | None) -> None:
    assert route_group(key) == group


def test_other_shows_its_worst_route_with_the_traffic_of_all_and_monitoring_is_left_out() -> None:
    grouped = group_latency(api_document({})["latency"])
    assert grouped["create"].p99 == 40.0 and grouped["status"].count == 300
    other = grouped["other"]
    assert (other.p99, other.p50, other.count, other.rate_per_second) == (30.0, 7.5, 7, 0.3)
    assert grouped["batch"].count == 0 and grouped["batch"].p99 is None  # never called: idle, not unknown


def test_response_totals_per_group_count_5xx_apart() -> None:
    responses = {
        "POST /api/orders": {"2xx": 8, "3xx": 0, "4xx": 1, "5xx": 1},
        "GET /api/orders/{order_id}": {"2xx": 4, "3xx": 0, "4xx": 0, "5xx": 2},
        "GET /api/metrics": {"2xx": 60, "3xx": 0, "4xx": 0, "5xx": 9},
    }
    assert response_totals(responses) == {"create": (10, 1), "status": (0, 0), "batch": (0, 0), "other": (6, 2)}


def test_api_responses_read_the_http_responses_counter_per_route_and_status_class() -> None:
    metrics = ApiMetrics()
    for status in (200, 201, 201, 404, 503):
        metrics.record("/api/orders", "POST", status, 0.01)
    metrics.record("/api/orders/{order_id}/status", "GET", 200, 0.001)
    assert metrics.responses_by_route() == {
        "GET /api/orders/{order_id}/status": {"2xx": 1, "3xx": 0, "4xx": 0, "5xx": 0},
        "POST /api/orders": {"2xx": 3, "3xx": 0, "4xx": 1, "5xx": 1},
    }
    assert set(metrics.responses_by_route()) <= set(metrics.kit.latencies)  # the same names as `latency`


def test_a_daemon_row_is_down_without_an_answer_and_degraded_with_problems() -> None:
    down = daemon_health("relay", None, "relay not answering at u (ClientConnectorError)")
    assert (down.state, down.error) == (DOWN, "relay not answering at u (ClientConnectorError)")
    up = daemon_health("api", {"status": "ok", "version": "0.1.0", "uptimeSeconds": 190}, "")
    assert (up.state, up.detail, up.error) == (UP, "ok, 0.1.0, up 3 min", None)
    degraded = daemon_health("api", {"status": "degraded", "problems": ["redis: TimeoutError", "kafka: x"]}, "")
    assert (degraded.state, degraded.detail, degraded.error) == (DEGRADED, "degraded: redis: TimeoutError",
                                                                 "redis: TimeoutError; kafka: x")  # fmt: skip


def dep(up: bool | None, error: str | None = None) -> dict[str, Any]:
    return {"dependencies": {"kafka": {"up": up, "error": error}}}


def test_a_store_row_joins_the_dashboards_view_with_the_daemons() -> None:
    fine = Seen(True, "1 broker(s)")
    refused = Seen(False, "ConnectionRefusedError", "ConnectionRefusedError")
    assert store_health("kafka", fine, {"api": dep(True), "relay": None}).state == UP
    assert store_health("kafka", fine, {"api": dep(True)}).detail == "1 broker(s)"
    every_down = store_health("kafka", refused, {"api": dep(False, "KafkaConnectionError")})
    assert every_down.state == DOWN and "api: KafkaConnectionError" in (every_down.error or "")
    split = store_health("kafka", fine, {"api": dep(True), "relay": dep(False, "KafkaTimeoutError")})
    assert (split.state, split.detail, split.error) == (DEGRADED, "down for relay", "relay: KafkaTimeoutError")
    assert store_health("kafka", NOT_ASKED, {"api": dep(None)}).state == UNKNOWN
    assert store_health("kafka", NOT_ASKED, {"relay": dep(True)}).state == UP  # no probe yet: the daemons know
    wrong = Seen(True, "PostgreSQL 16.4: not migrated", "UndefinedTableError: outbox_events")
    assert store_health("postgres", wrong, {}).state == DEGRADED


def test_status_mix_sums_to_one_with_fallback_orders() -> None:
    assert status_mix({"OPTIMAL": 6, "FEASIBLE": 2}, 2) == {"FEASIBLE": 0.2, "OPTIMAL": 0.6, "FALLBACK": 0.2}
    assert status_mix({}, 0) == {}


@pytest.mark.parametrize(
    ("p99", "slo", "expected"),
    [(None, 5, IDLE), (3.9, 5, OK), (4.0, 5, WARN), (5.0, 5, WARN), (5.01, 5, BREACH)],
)
def test_levels_against_the_slo(p99: float | None, slo: float, expected: str) -> None:
    assert level(p99, slo) == expected


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def snap(trends: Trends, clock: Clock, documents: dict[str, Any], settings: Settings | None = None) -> Any:
    seen = {"postgres": Seen(True, "PostgreSQL 16"), "redis": Seen(True, "Redis")}
    answered = {name: (documents.get(name), "" if name in documents else f"{name} down") for name in
                ("api", "optimizer", "relay")}  # fmt: skip
    return assemble(settings or Settings(), 1.0, trends, answered, seen, None, None, clock())


def test_error_rate_and_slo_levels_from_two_readings_of_the_api() -> None:
    trends, clock = Trends(clock=Clock()), Clock()
    settings = Settings(dash_slo_status_ms=5.0, dash_slo_create_ms=45.0)
    first = snap(trends, clock, {"api": api_document({"POST /api/orders": {"2xx": 10, "5xx": 0}})}, settings)
    create = first.latency[0]
    assert (create.group, create.error_rate, create.level, create.slo_ms) == ("create", None, WARN, 45.0)
    assert first.latency[1].level == WARN  # 4.5 ms against 5 ms
    assert first.requests_per_second == pytest.approx(0.5 + 5.0 + 0.2 + 0.1)
    clock.now = 5.0
    second = snap(trends, clock, {"api": api_document({"POST /api/orders": {"2xx": 16, "4xx": 2, "5xx": 2}})})
    assert second.latency[0].error_rate == pytest.approx(2 / 10)
    assert second.latency[1].error_rate is None  # no status reads answered in the window
    assert trends.series("p99.create", 10) == [40.0, 40.0]


def test_reassignments_per_minute_and_the_recent_status_mix_from_the_optimizer() -> None:
    trends, clock = Trends(clock=Clock()), Clock()

    def optimizer(optimal: int, fallbacks: int, reassigned: int, feasible: int | None = None) -> dict[str, Any]:
        statuses = {"OPTIMAL": optimal, **({"FEASIBLE": feasible} if feasible is not None else {})}
        own = {"batchOrders": entry(5, 3.0), "statuses": statuses, "fallbacks": fallbacks, "reassignments": reassigned}
        return {"status": "ok", "latency": {"solve": entry(5, 12.5)}, "optimizer": own}

    first = snap(trends, clock, {"optimizer": optimizer(100, 0, 10)})
    assert first.optimizer.status_mix == {"OPTIMAL": 1.0}  # since the optimizer started, on the first reading
    assert first.optimizer.reassignments_per_minute is None and first.optimizer.solve_p99_ms == 12.5
    clock.now = 30.0
    second = snap(trends, clock, {"optimizer": optimizer(106, 1, 16, feasible=3)})
    assert second.optimizer.reassignments_per_minute == pytest.approx(12.0)
    assert second.optimizer.status_mix == {"FEASIBLE": 0.3, "OPTIMAL": 0.6, "FALLBACK": 0.1}


def test_under_in_time_the_held_orders_placed_per_minute_and_those_due_waiting() -> None:
    trends, clock = Trends(clock=Clock()), Clock()

    def optimizer(held: int, unplaced: int | None) -> dict[str, Any]:
        own = {"dispatchPolicy": "in-time", "heldAssigned": held, "heldDueUnplaced": unplaced}
        return {"status": "ok", "latency": {}, "optimizer": own}

    first = snap(trends, clock, {"optimizer": optimizer(100, None)}).optimizer
    assert (first.dispatch_policy, first.held_per_minute, first.held_due_unplaced) == ("in-time", None, None)
    clock.now = 30.0
    second = snap(trends, clock, {"optimizer": optimizer(130, 4)}).optimizer
    assert (second.held_per_minute, second.held_due_unplaced) == (pytest.approx(60.0), 4)
    warn = Style(color="yellow")
    waiting = rounds(second, warn)
    assert (waiting.plain, waiting.style) == ("held 60.0 /min + 4 due", warn)
    assert rounds(replace(second, held_due_unplaced=0), warn).plain == "held 60.0 /min"
    rolling = replace(second, dispatch_policy="rolling", reassignments_per_minute=3.0)
    assert rounds(rolling, warn).plain == "3.00 /min"


def test_the_trips_planned_and_the_share_of_orders_riding_two_from_the_optimizer() -> None:
    def optimizer(**own: Any) -> dict[str, Any]:
        return {"status": "ok", "latency": {}, "optimizer": own}

    planned = {"pairs": 10, "joins": 50, "singles": 200}
    shown = snap(Trends(), Clock(), {"optimizer": optimizer(assigned=400, trips=planned)}).optimizer
    assert (shown.trip_pairs, shown.trip_joins, shown.riding_two_share) == (10, 50, 0.3)
    in_time = snap(Trends(), Clock(), {"optimizer": optimizer(assigned=100, heldAssigned=300, trips=planned)})
    assert in_time.optimizer.riding_two_share == 0.3  # the rounds' orders count as placed too
    idle = snap(Trends(), Clock(), {"optimizer": optimizer(assigned=0, trips={"pairs": 0})}).optimizer
    assert (idle.trip_pairs, idle.trip_joins, idle.riding_two_share) == (0, 0, None)
    older = snap(Trends(), Clock(), {"optimizer": optimizer(assigned=5)}).optimizer  # an optimizer without trips
    assert (older.trip_pairs, older.trip_joins, older.riding_two_share) == (None, None, None)


def test_without_postgres_the_outbox_is_the_relays_last_reading() -> None:
    relay = {"status": "ok", "latency": {"commitToAck": entry(120, 8.5, 2.0)},
             "relay": {"outbox": {"pending": 7, "lagSeconds": 1.5, "inBackoff": 1, "deadLetters": 2}}}  # fmt: skip
    shown = snap(Trends(), Clock(), {"relay": relay}).outbox
    assert (shown.pending, shown.lag_seconds, shown.in_backoff, shown.dead_letters_open) == (7, 1.5, 1, 2)
    assert (shown.publish_rate, shown.commit_to_ack_p99_ms) == (2.0, 8.5)
    nothing = snap(Trends(), Clock(), {}).outbox
    assert nothing.pending is None and nothing.publish_rate is None


def test_the_snapshot_json_is_camel_case_and_lists_health_stores_first() -> None:
    document = snap(Trends(), Clock(), {"api": api_document({})}).as_json()
    assert list(document) == ["takenAt", "refreshSeconds", "health", "latency", "requestsPerSecond", "outbox",
                              "channels", "optimizer", "problems"]  # fmt: skip
    assert [h["name"] for h in document["health"]] == ["postgres", "redis", "api", "optimizer", "relay"]
    assert set(document["latency"][0]) == {"group", "latency", "errorRate", "sloMs", "level"}
    assert set(document["latency"][0]["latency"]) == {"count", "ratePerSecond", "p50", "p95", "p99", "max"}
    assert document["optimizer"]["statusMix"] == {}
