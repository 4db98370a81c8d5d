"""`uoom dax health` against a moto server of this module's own: its DAX control plane
(CreateCluster, DescribeClusters) and CloudWatch (PutMetricData, GetMetricStatistics) are real
implementations of those APIs, which the local stack's DynamoDB server (dynoxide, or moto) is not
asked for. No DAX data plane runs here: the probe through DAX is checked to fail fast and say so;
its routing is covered in tests/unit/test_health.py."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from commands.main import app
from tests.e2e.conftest import DynamoDBServer
from tests.integration.relay_support import free_ports

runner = CliRunner()


@dataclass(frozen=True)
class ControlPlane:
    """Where AWS's DAX control plane and CloudWatch answer here, and its region."""

    endpoint: str
    aws_region: str


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory, settings: Any) -> Iterator[ControlPlane]:
    """A moto server of this module's own, stopped afterwards."""
    server = DynamoDBServer(free_ports(), tmp_path_factory.mktemp("control-plane"), "moto")
    server.start()
    try:
        yield ControlPlane(server.endpoint, settings.aws_region)
    finally:
        server.kill()


def aws(plane: ControlPlane, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=plane.endpoint,
        region_name=plane.aws_region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@pytest.fixture
def cluster(stack: Any, control_plane: ControlPlane) -> Iterator[str]:
    """A DAX cluster of two nodes with a name of its own, in moto's control plane."""
    name = f"t{uuid.uuid4().hex[:12]}"
    dax = aws(control_plane, "dax")
    dax.create_cluster(
        ClusterName=name,
        NodeType="dax.r5.large",
        ReplicationFactor=2,
        IamRoleArn="arn:aws:iam::123456789012:role/uoom-dax",
    )
    yield name
    dax.delete_cluster(ClusterName=name)


def available(plane: ControlPlane, name: str) -> None:
    """moto reports a new cluster `creating` for its first few descriptions, then `available`."""
    dax = aws(plane, "dax")
    for _ in range(10):
        if dax.describe_clusters(ClusterNames=[name])["Clusters"][0]["Status"] == "available":
            return
    raise AssertionError(f"cluster {name} never became available")


def put_cpu(plane: ControlPlane, name: str, percent: float) -> None:
    aws(plane, "cloudwatch").put_metric_data(
        Namespace="AWS/DAX",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "ClusterId", "Value": name}],
                "Value": percent,
                "Unit": "Percent",
                "Timestamp": datetime.now(UTC) - timedelta(seconds=5),
            }
        ],
    )


@pytest.fixture
def dax_env(monkeypatch: pytest.MonkeyPatch, control_plane: ControlPlane, cluster: str) -> str:
    """DAX_ENDPOINT as AWS gives it (the cluster name is its first label), both control endpoints on moto."""
    monkeypatch.setenv("DAX_ENDPOINT", f"{cluster}.x1y2z3.dax-clusters.us-east-1.amazonaws.com:8111")
    monkeypatch.setenv("UOOM_DAX_CONTROL_ENDPOINT", control_plane.endpoint)
    monkeypatch.setenv("UOOM_CLOUDWATCH_ENDPOINT", control_plane.endpoint)
    return cluster


def health(*args: str) -> tuple[int, dict[str, Any], str]:
    result = runner.invoke(app, ["dax", "health", "--json", *args])
    return result.exit_code, json.loads(result.stdout), result.stderr


def rows(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in document["checks"]}


def test_an_available_cluster_with_low_cpu_is_healthy(control_plane: ControlPlane, dax_env: str) -> None:
    available(control_plane, dax_env)
    put_cpu(control_plane, dax_env, 12.5)
    code, document, stderr = health("--probes", "0")
    assert code == 0, document
    assert document["status"] == "healthy" and document["clusterName"] == dax_env
    assert document["cluster"]["status"] == "available"
    assert [n["status"] for n in document["cluster"]["nodes"]] == ["available", "available"]
    assert document["cpu"]["name"] == "dax_cluster_cpu_utilization" and document["cpu"]["percent"] == 12.5
    assert rows(document)["probe dax"]["state"] == "skip"
    assert stderr.strip() == "DAX healthy"


def test_cpu_over_the_threshold_is_degraded(control_plane: ControlPlane, dax_env: str) -> None:
    available(control_plane, dax_env)
    put_cpu(control_plane, dax_env, 95.0)
    code, document, stderr = health("--probes", "0")
    assert code == 1
    assert document["status"] == "degraded"
    cpu = rows(document)["dax_cluster_cpu_utilization"]
    assert cpu["state"] == "fail" and "95 %" in cpu["detail"] and cpu["fix"]
    assert stderr.startswith("DAX degraded: dax_cluster_cpu_utilization: 95 %")
    # the threshold is an option: the same CPU under a higher one is healthy
    assert health("--probes", "0", "--max-cpu", "99")[0] == 0


def test_a_cluster_that_is_not_available_yet_is_degraded(dax_env: str) -> None:
    code, document, _ = health("--probes", "0")  # moto: `creating` for its first descriptions
    assert code == 1
    assert rows(document)["cluster"]["state"] == "fail"
    assert document["cluster"]["status"] == "creating"


def test_an_unknown_cluster_name_is_degraded_and_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, dax_env: str
) -> None:
    monkeypatch.setenv("UOOM_DAX_CLUSTER_NAME", f"n{uuid.uuid4().hex[:10]}")
    code, document, _ = health("--probes", "0")
    assert code == 1
    assert "UOOM_DAX_CLUSTER_NAME" in rows(document)["cluster"]["fix"]


def test_a_control_plane_that_does_not_answer_is_unreachable(monkeypatch: pytest.MonkeyPatch, dax_env: str) -> None:
    monkeypatch.setenv("UOOM_DAX_CONTROL_ENDPOINT", f"http://127.0.0.1:{free_ports()}")
    started = time.monotonic()
    code, document, stderr = health("--probes", "0")
    assert code == 2
    assert document["status"] == "unreachable"
    assert rows(document)["cluster"]["state"] == "down"
    assert "control plane is not answering" in stderr
    assert time.monotonic() - started < 10


def test_without_a_dax_data_plane_the_probe_says_it_cannot_connect(
    monkeypatch: pytest.MonkeyPatch, control_plane: ControlPlane, dax_env: str
) -> None:
    available(control_plane, dax_env)
    monkeypatch.setenv("UOOM_DAX_CLUSTER_NAME", dax_env)
    monkeypatch.setenv("DAX_ENDPOINT", f"127.0.0.1:{free_ports()}")  # nothing listens there
    started = time.monotonic()
    code, document, _ = health("--probes", "3")
    assert code == 2
    probe = rows(document)["probe dax"]
    assert probe["state"] == "down" and "the probe through DAX cannot connect" in probe["detail"]
    assert document["probes"]["dax"]["cannotConnect"]
    assert time.monotonic() - started < 10  # bounded, never hanging


def test_without_dax_it_says_so_and_probes_dynamodb(monkeypatch: pytest.MonkeyPatch, stack: Any) -> None:
    monkeypatch.setenv("DAX_ENDPOINT", "")
    code, document, stderr = health("--probes", "5", "--max-dynamodb-p99-ms", "10000")
    assert code == 0
    assert document["configured"] is False and rows(document)["dax"]["state"] == "skip"
    assert document["probes"]["dynamodb"]["count"] == 5 and document["probes"]["dynamodb"]["p99Ms"] > 0
    assert "DAX is not configured" in stderr
    # a P99 threshold of 0 cannot be met: degraded
    code, document, _ = health("--probes", "5", "--max-dynamodb-p99-ms", "0")
    assert code == 1 and rows(document)["probe dynamodb"]["state"] == "fail"


def test_dynamodb_not_answering_without_dax_is_unreachable(monkeypatch: pytest.MonkeyPatch, stack: Any) -> None:
    monkeypatch.setenv("DAX_ENDPOINT", "")
    monkeypatch.setenv("DYNAMODB_ENDPOINT", f"http://127.0.0.1:{free_ports()}")
    code, document, _ = health("--probes", "5")
    assert code == 2 and document["status"] == "unreachable"


def test_the_json_has_the_documented_shape(control_plane: ControlPlane, dax_env: str) -> None:
    available(control_plane, dax_env)
    _, document, _ = health("--probes", "0")
    assert list(document) == [
        "status",
        "exitCode",
        "configured",
        "endpoint",
        "clusterName",
        "cluster",
        "cpu",
        "probes",
        "checks",
    ]
    assert set(document["cluster"]) == {"status", "totalNodes", "nodes", "discoveryEndpoint"}
    assert set(document["cluster"]["nodes"][0]) == {"nodeId", "status", "address", "availabilityZone"}
    assert set(document["cpu"]) == {"name", "percent", "maxPercent", "at", "threshold", "note"}
    assert set(document["checks"][0]) == {"name", "state", "detail", "fix", "elapsedMs"}
