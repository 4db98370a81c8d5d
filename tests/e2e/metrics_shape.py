"""The metrics document every daemon answers (docs/metrics.md), checked the same way for each."""

from __future__ import annotations

from typing import Any

COMMON = ["service", "version", "python", "instance", "startedAt", "uptimeSeconds", "status", "problems",
          "dependencies", "latency"]  # fmt: skip
ENTRY = {"total", "count", "ratePerSecond", "p50", "p95", "p99", "max"}


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
