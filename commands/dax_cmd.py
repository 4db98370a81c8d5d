"""`uoom dax health`: the DAX cluster, its CPU, and read latency through it beside DynamoDB's."""

from __future__ import annotations

import typer

from commands._context import current
from commands._output import JSON_OPTION, command, err, group

DAX_EXIT_CODES = "Exit codes: 0 healthy, 1 degraded, 2 unreachable (or a usage error)."
app = group(f"DynamoDB Accelerator (DAX): the cluster's health.\n\n{DAX_EXIT_CODES}")


@app.command()
@command
async def health(
    probes: int | None = typer.Option(
        None, "--probes", min=0, help="GetItems per latency probe (default UOOM_DAX_PROBES); 0 skips the probes."
    ),
    max_p99_ms: float | None = typer.Option(
        None, "--max-p99-ms", min=0, help="DAX probe P99 above this (ms) is degraded (UOOM_DAX_MAX_P99_MS)."
    ),
    max_dynamodb_p99_ms: float | None = typer.Option(
        None, "--max-dynamodb-p99-ms", min=0, help="Direct DynamoDB P99 above this (ms) is degraded."
    ),
    max_cpu: float | None = typer.Option(
        None, "--max-cpu", min=0, help="Cluster CPU (%) above this is degraded (UOOM_DAX_MAX_CPU_PERCENT)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The cluster and its nodes (DAX DescribeClusters), its CPU (CloudWatch AWS/DAX CPUUtilization,
    as dax_cluster_cpu_utilization), and N GetItems through DAX beside the same against DynamoDB,
    with P50/P99. Without DAX_ENDPOINT: says so and probes DynamoDB alone.

    Exit codes: 0 healthy, 1 degraded (a node or the cluster not available, CPU or a P99 over its
    threshold, GetItems failing), 2 unreachable (the control plane, the DAX data plane, or without
    DAX DynamoDB, does not answer) or a usage error.
    """
    from commands.doctor_cmd import show
    from uoom.health.dax import Thresholds, dax_health

    settings = current().settings
    limits = Thresholds.of(
        settings,
        probes=probes,
        dax_max_p99_ms=max_p99_ms,
        dynamodb_max_p99_ms=max_dynamodb_p99_ms,
        max_cpu_percent=max_cpu,
    )
    report = await dax_health(settings, limits)
    document = report.as_json()
    document.pop("checks")
    show(report.checks, as_json, f"dax health: {report.status}", document)
    wrong = "; ".join(f"{c.name}: {c.detail}" for c in report.checks if c.failed)
    about = "DAX" if report.configured else "DAX is not configured (DAX_ENDPOINT is empty); DynamoDB"
    err.print(f"{about} {report.status}" + (f": {wrong}" if wrong else ""))
    raise typer.Exit(report.exit_code)
