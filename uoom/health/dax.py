"""`uoom dax health`: the DAX cluster as its control plane describes it (DescribeClusters), its CPU
from CloudWatch (`AWS/DAX` CPUUtilization, reported as `dax_cluster_cpu_utilization`), and the
latency of N GetItems through amazon-dax-client beside the same GetItems against DynamoDB.

Verdict: `unreachable` when the control plane or the DAX data plane does not answer (without DAX:
DynamoDB), `degraded` when a row fails (cluster or a node not `available`, CPU or a P99 over its
threshold, GetItems failing, the cluster or table not found), else `healthy`. Not being permitted
to read something (AccessDenied) or having no datapoint is a `warn` row, not a failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from uoom.config import Settings
from uoom.health.checks import DOWN, FAIL, OK, SKIP, WARN, Check, bounded, in_daemon_thread, nearest_rank, one_line

CPU_METRIC = "dax_cluster_cpu_utilization"
PROBE_KEY = "uoom-health-probe"  # GetItem of a key that need not exist: a miss is a full round trip
CPU_WINDOW = timedelta(minutes=10)
CALL_TIMEOUT = 2.5  # one call's connect + read timeout: the most a call in flight at a deadline takes
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}
HEALTHY, DEGRADED, UNREACHABLE = "healthy", "degraded", "unreachable"
EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, UNREACHABLE: 2}


@dataclass(frozen=True)
class Thresholds:
    probes: int
    dax_max_p99_ms: float
    dynamodb_max_p99_ms: float
    max_cpu_percent: float
    timeout: float

    @classmethod
    def of(cls, settings: Settings, **overrides: Any) -> Thresholds:
        values: dict[str, Any] = {
            "probes": settings.dax_probes,
            "dax_max_p99_ms": settings.dax_max_p99_ms,
            "dynamodb_max_p99_ms": settings.dynamodb_max_p99_ms,
            "max_cpu_percent": settings.dax_max_cpu_percent,
            "timeout": settings.check_timeout,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class Probe:
    """N GetItems: latencies of those that answered, the errors of those that did not."""

    target: str
    samples: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cannot_connect: str | None = None  # the client could not be set up or reach anything
    planned: int = 0
    deadline: float = 0.0  # time.perf_counter() after which no GetItem starts

    def due(self) -> bool:
        """Another GetItem, or are we done (all planned sent, or out of time)?"""
        return len(self.samples) + len(self.errors) < self.planned and time.perf_counter() < self.deadline

    def as_json(self) -> dict[str, Any]:
        return {
            "count": len(self.samples),
            "errors": len(self.errors),
            "p50_ms": nearest_rank(self.samples, 50),
            "p99_ms": nearest_rank(self.samples, 99),
            "cannot_connect": self.cannot_connect,
        }


@dataclass
class DaxHealth:
    configured: bool
    endpoint: str | None
    cluster_name: str | None
    cluster: dict[str, Any] | None
    cpu: dict[str, Any] | None
    probes: dict[str, Probe]
    checks: list[Check]
    status: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "configured": self.configured,
            "endpoint": self.endpoint,
            "cluster_name": self.cluster_name,
            "cluster": self.cluster,
            "cpu": self.cpu,
            "probes": {k: p.as_json() for k, p in self.probes.items()},
            "checks": [c.as_json() for c in self.checks],
        }


def aws_client(settings: Settings, service: str, endpoint: str) -> Any:
    """An aioboto3 client that fails fast: one attempt, short timeouts (a health check waits on it)."""
    import aioboto3
    from aiobotocore.config import AioConfig

    return aioboto3.Session().client(
        service,
        endpoint_url=endpoint or None,
        region_name=settings.aws_region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
        config=AioConfig(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
    )


def dax_client(settings: Settings) -> Any:
    """amazon-dax-client for DAX_ENDPOINT with bounded connect and read timeouts, no retries."""
    from amazondax import AmazonDaxClient
    from botocore.config import Config

    endpoint = settings.dax_endpoint if "://" in settings.dax_endpoint else f"dax://{settings.dax_endpoint}"
    return AmazonDaxClient(
        endpoint_url=endpoint,
        region_name=settings.aws_region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 0}),
    )


async def dax_health(
    settings: Settings, limits: Thresholds, *, dax_factory: Callable[[Settings], Any] = dax_client
) -> DaxHealth:
    configured = bool(settings.dax_endpoint)
    name = settings.effective_dax_cluster_name if configured else None
    cluster: dict[str, Any] = {}
    cpu: dict[str, Any] = {}
    probes: dict[str, Probe] = {}
    rows: list[Any] = []
    if configured:
        rows += [
            bounded(
                "cluster",
                lambda: _describe(settings, str(name), cluster),
                limits.timeout,
                "check UOOM_DAX_CONTROL_ENDPOINT (empty: AWS's) and the network",
            ),
            bounded(
                CPU_METRIC,
                lambda: _cpu(settings, str(name), limits, cpu),
                limits.timeout,
                "check UOOM_CLOUDWATCH_ENDPOINT (empty: AWS's) and the network",
            ),
            bounded(
                "probe dax",
                lambda: _probe_dax(settings, limits, probes, dax_factory),
                limits.timeout + CALL_TIMEOUT,
                "check DAX_ENDPOINT; from inside the cluster's VPC, port 8111 (dax) or 9111 (daxs)",
            ),
        ]
    rows.append(
        bounded(
            "probe dynamodb",
            lambda: _probe_dynamodb(settings, limits, probes),
            limits.timeout + CALL_TIMEOUT,
            "check DYNAMODB_ENDPOINT and that DynamoDB answers",
        )
    )
    found = list(await asyncio.gather(*rows))
    if configured:
        found[1:1] = cluster.pop("node_checks", [])
    else:
        found.insert(0, Check("dax", SKIP, "not configured (DAX_ENDPOINT is empty): status reads go to DynamoDB"))
    return DaxHealth(
        configured,
        settings.dax_endpoint or None,
        name,
        cluster or None,
        cpu or None,
        probes,
        found,
        verdict(found, configured),
    )


def verdict(checks: list[Check], configured: bool) -> str:
    """unreachable when what serves the reads does not answer; degraded when any row fails."""
    essential = {"cluster", "probe dax"} if configured else {"probe dynamodb"}
    if any(c.state == DOWN and c.name in essential for c in checks):
        return UNREACHABLE
    return DEGRADED if any(c.failed for c in checks) else HEALTHY


# -- control plane -----------------------------------------------------------------------------


async def _describe(settings: Settings, name: str, out: dict[str, Any]) -> Check:
    from botocore.exceptions import ClientError, EndpointConnectionError

    try:
        async with aws_client(settings, "dax", settings.dax_control_endpoint) as client:
            found = (await client.describe_clusters(ClusterNames=[name]))["Clusters"]
    except EndpointConnectionError as exc:
        return Check(
            "cluster",
            DOWN,
            f"the DAX control plane is not answering ({one_line(exc)})",
            "check UOOM_DAX_CONTROL_ENDPOINT (empty: AWS's) and the network",
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in DENIED:
            return Check("cluster", WARN, "not permitted to describe it (dax:DescribeClusters)")
        if code == "ClusterNotFoundFault":
            return Check(
                "cluster",
                FAIL,
                f"no DAX cluster named {name!r}",
                "set UOOM_DAX_CLUSTER_NAME (default: DAX_ENDPOINT's first DNS label)",
            )
        raise
    described = found[0]
    nodes = [
        {
            "node_id": n["NodeId"],
            "status": n.get("NodeStatus"),
            "address": n.get("Endpoint", {}).get("Address"),
            "availability_zone": n.get("AvailabilityZone"),
        }
        for n in described.get("Nodes", [])
    ]
    status = described.get("Status")
    out.update(
        status=status,
        total_nodes=described.get("TotalNodes"),
        nodes=nodes,
        discovery_endpoint=described.get("ClusterDiscoveryEndpoint", {}).get("URL"),
    )
    out["node_checks"] = [_node(n["node_id"], n["status"]) for n in nodes]
    available = sum(n["status"] == "available" for n in nodes)
    detail = f"{status}, {available}/{described.get('TotalNodes')} nodes available"
    if status != "available":
        return Check("cluster", FAIL, detail, "wait until the cluster is available (it may be creating or modifying)")
    return Check("cluster", OK, detail)


def _node(node_id: str, status: str | None) -> Check:
    if status == "available":
        return Check(f"node {node_id}", OK, status)
    return Check(f"node {node_id}", FAIL, str(status), "wait until it is available, or reboot it (dax reboot-node)")


async def _cpu(settings: Settings, name: str, limits: Thresholds, out: dict[str, Any]) -> Check:
    from botocore.exceptions import ClientError, EndpointConnectionError

    now = datetime.now(UTC)
    out.update(name=CPU_METRIC, percent=None, max_percent=None, at=None, threshold=limits.max_cpu_percent, note=None)
    try:
        async with aws_client(settings, "cloudwatch", settings.cloudwatch_endpoint) as client:
            answer = await client.get_metric_statistics(
                Namespace="AWS/DAX",
                MetricName="CPUUtilization",
                Dimensions=[{"Name": "ClusterId", "Value": name}],
                StartTime=now - CPU_WINDOW,
                EndTime=now,
                Period=60,
                Statistics=["Average", "Maximum"],
            )
    except EndpointConnectionError as exc:
        out["note"] = "CloudWatch not answering"
        return Check(
            CPU_METRIC,
            WARN,
            f"unknown: CloudWatch not answering ({one_line(exc)})",
            "check UOOM_CLOUDWATCH_ENDPOINT (empty: AWS's)",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in DENIED:
            raise
        out["note"] = "not permitted"
        return Check(CPU_METRIC, WARN, "not permitted (cloudwatch:GetMetricStatistics)")
    points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
    if not points:
        out["note"] = "no datapoint"
        return Check(CPU_METRIC, WARN, f"no datapoint in the last {CPU_WINDOW.seconds // 60} minutes")
    latest = points[-1]
    out.update(
        percent=round(latest["Average"], 2),
        max_percent=round(max(p["Maximum"] for p in points), 2),
        at=latest["Timestamp"].isoformat(),
    )
    detail = f"{out['percent']:g} % (last minute; threshold {limits.max_cpu_percent:g} %)"
    if out["percent"] > limits.max_cpu_percent:
        return Check(CPU_METRIC, FAIL, detail, "scale the cluster up or out (larger node type, more nodes)")
    return Check(CPU_METRIC, OK, detail)


# -- the latency probes --------------------------------------------------------------------------


def probe_dax(settings: Settings, limits: Thresholds, factory: Callable[[Settings], Any]) -> Probe:
    """`limits.probes` GetItems through a DAX client, as many as fit in `limits.timeout` (blocking:
    run it off the loop)."""
    probe = Probe("dax", planned=limits.probes, deadline=time.perf_counter() + limits.timeout)
    try:
        client = factory(settings)
    except Exception as exc:  # noqa: BLE001 - the DAX client raises its own error types
        error = getattr(exc, "response", {}).get("Error", {})  # DaxClientError is a botocore ClientError
        probe.cannot_connect = f"{error['Code']}: {error.get('Message')}" if "Code" in error else one_line(exc)
        return probe
    try:
        while probe.due():
            started = time.perf_counter()
            try:
                client.get_item(TableName=settings.dynamodb_table, Key={"orderId": {"S": PROBE_KEY}})
            except Exception as exc:  # noqa: BLE001 - counted, and the last one shown
                probe.errors.append(one_line(exc))
                continue
            probe.samples.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return probe


async def _probe_dax(
    settings: Settings, limits: Thresholds, out: dict[str, Probe], factory: Callable[[Settings], Any]
) -> Check:
    if limits.probes == 0:
        return Check("probe dax", SKIP, "skipped (probes 0)")
    probe = out["dax"] = await in_daemon_thread(
        lambda: probe_dax(settings, limits, factory), limits.timeout + CALL_TIMEOUT
    )
    if probe.cannot_connect:
        return Check(
            "probe dax",
            DOWN,
            f"the probe through DAX cannot connect to {settings.dax_endpoint} ({probe.cannot_connect})",
            "run it where the cluster is reachable (its VPC), or check DAX_ENDPOINT",
        )
    return judge("probe dax", probe, limits.dax_max_p99_ms)


async def _probe_dynamodb(settings: Settings, limits: Thresholds, out: dict[str, Probe]) -> Check:
    from botocore.exceptions import ClientError, EndpointConnectionError

    if limits.probes == 0:
        return Check("probe dynamodb", SKIP, "skipped (probes 0)")
    key = {"TableName": settings.dynamodb_table, "Key": {"orderId": {"S": PROBE_KEY}}}
    async with aws_client(settings, "dynamodb", settings.dynamodb_endpoint) as client:
        try:
            await client.get_item(**key)  # not timed: it opens the connection (the DAX client's opens at set-up)
        except EndpointConnectionError as exc:
            return Check(
                "probe dynamodb",
                DOWN,
                f"DynamoDB is not answering ({one_line(exc)})",
                "check DYNAMODB_ENDPOINT; locally `uoom stack up`",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            return Check(
                "probe dynamodb",
                FAIL,
                f"table {settings.dynamodb_table} does not exist",
                "`uoom migrate up` creates it",
            )
        probe = out["dynamodb"] = Probe(
            "dynamodb", planned=limits.probes, deadline=time.perf_counter() + limits.timeout
        )
        while probe.due():
            started = time.perf_counter()
            try:
                await client.get_item(**key)
            except (ClientError, EndpointConnectionError) as exc:
                probe.errors.append(one_line(exc))
                continue
            probe.samples.append((time.perf_counter() - started) * 1000)
    return judge("probe dynamodb", probe, limits.dynamodb_max_p99_ms)


def judge(name: str, probe: Probe, max_p99_ms: float) -> Check:
    """A probe's row: failing GetItems, or a P99 over the threshold, are degraded."""
    p50, p99 = nearest_rank(probe.samples, 50), nearest_rank(probe.samples, 99)
    total = len(probe.samples) + len(probe.errors)
    if total < probe.planned:
        return Check(
            name,
            FAIL,
            f"only {total} of {probe.planned} GetItems in time (p99 {p99} ms)",
            "look at the CPU, the node count and the network between here and it",
        )
    if probe.errors:
        return Check(
            name,
            FAIL,
            f"{len(probe.errors)} of {total} GetItems failed (last: {probe.errors[-1]})",
            "see the error; the service's own logs and metrics say more",
        )
    detail = f"{total} GetItems: p50 {p50:g} ms, p99 {p99:g} ms (threshold {max_p99_ms:g} ms)"
    if p99 is not None and p99 > max_p99_ms:
        return Check(name, FAIL, detail, "look at the CPU, the node count and the network between here and it")
    return Check(name, OK, detail)
