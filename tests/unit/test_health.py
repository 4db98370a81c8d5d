"""The pure parts of `uoom dax health` and `uoom doctor`: the probe's routing through a DAX client
(a stand-in here: no DAX data plane runs on this machine), percentiles, verdicts, the table shape,
and the bound on a blocking call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from uoom.config import Settings
from uoom.health.checks import DOWN, FAIL, OK, SKIP, WARN, Check, bounded, in_daemon_thread, nearest_rank
from uoom.health.dax import PROBE_KEY, Probe, Thresholds, judge, probe_dax, verdict
from uoom.health.platform import table_differences
from uoom.provision import STATUS_TABLE_KEYS


class StandInDax:
    """What probe_dax needs of amazon-dax-client: get_item and close."""

    def __init__(self, fail_every: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.closed = False
        self.fail_every = fail_every

    def get_item(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.fail_every and len(self.calls) % self.fail_every == 0:
            raise ConnectionResetError("node went away")
        return {}

    def close(self) -> None:
        self.closed = True


def limits(**overrides: Any) -> Thresholds:
    values = {
        "probes": 20,
        "dax_max_p99_ms": 5.0,
        "dynamodb_max_p99_ms": 100.0,
        "max_cpu_percent": 80.0,
        "timeout": 3.0,
    } | overrides
    return Thresholds(**values)


def test_the_dax_probe_sends_its_getitems_through_the_dax_client() -> None:
    settings = Settings(dax_endpoint="c.x.dax-clusters.us-east-1.amazonaws.com:8111", dynamodb_table="t1")
    client = StandInDax()
    made: list[Settings] = []
    probe = probe_dax(settings, limits(), lambda s: made.append(s) or client)
    assert made == [settings]
    assert client.calls == [{"TableName": "t1", "Key": {"orderId": {"S": PROBE_KEY}}}] * 20
    assert client.closed
    assert len(probe.samples) == 20 and probe.errors == [] and probe.cannot_connect is None
    assert judge("probe dax", probe, 5.0).state == OK


def test_a_dax_client_that_cannot_connect_is_said_so_and_sends_nothing() -> None:
    def no_route(settings: Settings) -> Any:
        raise RuntimeError("NoRouteException: Failed to configure cluster endpoints")

    probe = probe_dax(Settings(dax_endpoint="127.0.0.1:8111"), limits(), no_route)
    assert probe.cannot_connect == "RuntimeError: NoRouteException: Failed to configure cluster endpoints"
    assert probe.samples == [] and probe.errors == []


def test_failing_getitems_make_the_probe_fail_with_the_last_error() -> None:
    client = StandInDax(fail_every=4)
    probe = probe_dax(Settings(dax_endpoint="h:8111"), limits(), lambda s: client)
    check = judge("probe dax", probe, 5.0)
    assert check.state == FAIL
    assert check.detail == "5 of 20 GetItems failed (last: ConnectionResetError: node went away)"


def test_a_p99_over_the_threshold_fails_and_under_it_passes() -> None:
    probe = Probe("dax", samples=[1.0] * 98 + [7.0, 9.0], planned=100)
    assert judge("probe dax", probe, 5.0).state == FAIL
    assert judge("probe dax", probe, 10.0).state == OK
    assert "p50 1 ms, p99 7 ms" in judge("probe dax", probe, 10.0).detail


def test_a_probe_cut_short_by_its_deadline_fails() -> None:
    client = StandInDax()
    probe = probe_dax(Settings(dax_endpoint="h:8111"), limits(probes=10**9, timeout=0.05), lambda s: client)
    check = judge("probe dax", probe, 5.0)
    assert check.state == FAIL and check.detail.startswith("only ")


def test_nearest_rank_is_always_one_of_the_samples() -> None:
    samples = [float(v) for v in range(1, 101)]
    assert nearest_rank(samples, 50) == 50.0 and nearest_rank(samples, 99) == 99.0
    assert nearest_rank([3.0], 99) == 3.0 and nearest_rank([], 50) is None


@pytest.mark.parametrize(
    ("states", "configured", "expected"),
    [
        ({"cluster": OK, "probe dax": OK, "probe dynamodb": OK}, True, "healthy"),
        ({"cluster": OK, "dax_cluster_cpu_utilization": WARN, "probe dax": SKIP}, True, "healthy"),
        ({"cluster": OK, "node c-a": FAIL, "probe dax": OK}, True, "degraded"),
        ({"cluster": DOWN, "probe dax": OK}, True, "unreachable"),
        ({"cluster": OK, "probe dax": DOWN}, True, "unreachable"),
        ({"cluster": OK, "probe dax": OK, "probe dynamodb": DOWN}, True, "degraded"),  # DAX still serves
        ({"dax": SKIP, "probe dynamodb": DOWN}, False, "unreachable"),
        ({"dax": SKIP, "probe dynamodb": FAIL}, False, "degraded"),
    ],
)
def test_the_verdict(states: dict[str, str], configured: bool, expected: str) -> None:
    assert verdict([Check(n, s, "") for n, s in states.items()], configured) == expected


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [
        ("mycluster.abc123.dax-clusters.us-east-1.amazonaws.com:8111", "mycluster"),
        ("daxs://secure.abc123.dax-clusters.eu-west-1.amazonaws.com", "secure"),
        ("", ""),
    ],
)
def test_the_cluster_name_defaults_to_the_endpoints_first_label(endpoint: str, name: str) -> None:
    assert Settings(dax_endpoint=endpoint).effective_dax_cluster_name == name
    assert Settings(dax_endpoint=endpoint, dax_cluster_name="set").effective_dax_cluster_name == "set"


def described(**changes: Any) -> dict[str, Any]:
    table = {
        "KeySchema": STATUS_TABLE_KEYS["KeySchema"],
        "GlobalSecondaryIndexes": STATUS_TABLE_KEYS["GlobalSecondaryIndexes"],
    }
    return table | changes


def test_the_table_as_provisioned_has_no_difference() -> None:
    assert (
        table_differences(
            described(), {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}, STATUS_TABLE_KEYS, "ttl"
        )
        == []
    )


def test_every_difference_of_the_table_is_named() -> None:
    found = table_differences(
        described(KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], GlobalSecondaryIndexes=[]),
        {"TimeToLiveStatus": "DISABLED"},
        STATUS_TABLE_KEYS,
        "ttl",
    )
    assert found == [
        "key is [('id', 'HASH')], expected [('orderId', 'HASH')]",
        "GSI CustomerStatusIndex missing",
        "TTL is DISABLED on None, expected ENABLED on 'ttl'",
    ]


async def test_a_blocking_call_that_hangs_is_abandoned_at_its_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await in_daemon_thread(lambda: time.sleep(30), 0.2)
    assert time.monotonic() - started < 1


async def test_a_check_that_does_not_answer_in_time_is_a_down_row_with_its_fix() -> None:
    async def hangs() -> Check:
        await asyncio.sleep(30)
        raise AssertionError

    row = await bounded("redis", hangs, 0.1, "start it with `uoom stack up`")
    assert (row.state, row.detail, row.fix) == (DOWN, "no answer in 0.1 s", "start it with `uoom stack up`")
    assert row.failed and row.elapsed_ms is not None and row.elapsed_ms < 1000
