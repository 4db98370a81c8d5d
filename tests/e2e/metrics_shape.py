"""The metrics document every daemon answers (docs/metrics.md), checked the same way for each."""

from __future__ import annotations

from typing import Any

COMMON = ["service", "version", "python", "instance", "startedAt", "uptimeSeconds", "status", "problems",
          "dependencies", "latency"]  # fmt: skip
ENTRY = {"total", "count", "ratePerSecond", "p50", "p95", "p99", "max"}
STATUS_CLASSES = {"2xx", "3xx", "4xx", "5xx"}


def assert_metrics_document(document: dict[str, Any], service: str, dependencies: set[str]) -> None:
    assert list(document) == [*COMMON, service], list(document)
    assert document["service"] == service
    assert document["status"] in ("starting", "ok", "degraded", "stopping")
    assert isinstance(document["problems"], list) and document["uptimeSeconds"] >= 0
    assert set(document["dependencies"]) == dependencies, document["dependencies"]
    for name, dependency in document["dependencies"].items():
        assert set(dependency) == {"up", "error"}, name
    for name, entry in document["latency"].items():
        assert set(entry) == ENTRY, name
        assert entry["total"] >= entry["count"] >= 0, name
        if entry["count"]:
            assert entry["p50"] <= entry["p95"] <= entry["p99"] <= entry["max"], name
    if service == "api":
        assert_api_responses(document)


def assert_api_responses(document: dict[str, Any]) -> None:
    """`api.responses`: per route, named as in `latency`, the responses by status class; as many as
    the route's latency total (both count the same responses; a request answered between the two
    reads makes the latency total the larger)."""
    responses = document["api"]["responses"]
    for route, by_class in responses.items():
        assert set(by_class) == STATUS_CLASSES, route
        assert all(isinstance(n, int) and n >= 0 for n in by_class.values()), route
        assert route in document["latency"], route
        assert 0 < sum(by_class.values()) <= document["latency"][route]["total"], route
