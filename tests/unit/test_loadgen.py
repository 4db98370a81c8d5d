"""The shared load generator's pure parts (uoom/loadgen), the books' verdict and summary, and
`uoom bench`'s bad input: no service is needed."""

from __future__ import annotations

import itertools
import random
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from typer.testing import CliRunner

from bench.common import percentiles
from commands.main import app
from uoom.books import Books
from uoom.loadgen import Histogram, Run, intended_times, latency_histogram, run
from uoom.loadgen.cpu import _daemon_name
from uoom.loadgen.machine import command_line

runner = CliRunner()


def test_the_schedule_is_rate_times_duration_requests_evenly_spaced() -> None:
    times = intended_times(20, 3, start=100.0)
    assert len(times) == 60
    assert times[0] == 100.0 and times[-1] == pytest.approx(100.0 + 59 / 20)
    assert {round(b - a, 9) for a, b in itertools.pairwise(times)} == {0.05}
    assert len(intended_times(0.5, 3)) == 1  # a request every 2 s: the one at 0 s fits in 3 s
    with pytest.raises(ValueError):
        intended_times(0, 3)


def test_histogram_percentiles_match_a_known_distribution_to_three_digits() -> None:
    values = [i / 1000 for i in range(1, 100_001)]  # 0.001 .. 100 ms, uniform
    random.Random(7).shuffle(values)
    h = latency_histogram()
    for v in values:
        h.record(v)
    summary = h.summary()
    for name, exact in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)):
        assert summary[name] == pytest.approx(exact, rel=1e-3), name
    assert summary["max"] == 100.0 and h.count == 100_000


def test_histogram_of_an_exponential_distribution_matches_its_quantiles() -> None:
    rng = random.Random(11)
    values = sorted(rng.expovariate(1 / 5.0) for _ in range(200_000))  # mean 5 ms
    h = Histogram.of(values, resolution=0.001, highest=10_000)
    for p in (50, 90, 99, 99.9):
        exact = values[int(len(values) * p / 100) - 1]
        assert h.percentile(p) == pytest.approx(exact, rel=2e-3), p


def test_an_empty_histogram_has_no_percentiles_and_refuses_negative_values() -> None:
    h = latency_histogram()
    assert h.summary() == {"p50": None, "p90": None, "p99": None, "p99.9": None, "max": None}
    with pytest.raises(ValueError):
        h.record(-1)
    assert percentiles([]) == h.summary()


def test_bench_percentiles_keep_small_units() -> None:
    """relay_bench passes seconds: 12.3 ms must stay 0.0123, not round to nothing."""
    assert percentiles([0.0123] * 10)["p99"] == pytest.approx(0.0123, rel=1e-3)


def test_run_report_shape() -> None:
    r = Run("create", 20, 3)
    r.sent, r.ok, r.elapsed = 60, 58, 3.2
    r.error("http 503")
    r.error("http 503")
    r.latency.record(12.5)
    doc = r.as_json()
    assert set(doc) == {"name", "rate", "seconds", "sent", "ok", "errors", "late_starts", "generator_saturated",
                        "achieved_rate", "latency_ms", "cpu_cores"}  # fmt: skip
    assert doc["errors"] == {"http 503": 2} and doc["achieved_rate"] == pytest.approx(58 / 3.2, abs=0.01)
    assert set(doc["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max"}
    assert r.latencies_ms == [pytest.approx(12.5, rel=1e-3)]  # what older readers (dash_bench) take


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_open_loop_counts_answers_errors_and_bodies() -> None:
    async def handler(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        return web.Response(status=500 if n % 4 == 0 else 201, body=b'{"id": "%d"}' % n)

    app_ = web.Application()
    app_.router.add_get("/{n}", handler)
    server = web.AppRunner(app_)
    await server.setup()
    port = _free_port()
    await web.TCPSite(server, "127.0.0.1", port).start()
    bodies: list[tuple[int, int]] = []
    progress: list[int] = []
    try:
        async with aiohttp.ClientSession() as session:
            result = await run(session, "t", 200, 0.5, lambda i: ("GET", f"http://127.0.0.1:{port}/{i}", {}),
                               on_response=lambda i, status, body: bodies.append((i, status)),
                               on_progress=lambda r: progress.append(r.sent))  # fmt: skip
    finally:
        await server.cleanup()
    assert (result.sent, result.ok, result.errors) == (100, 75, {"http 500": 25})
    assert result.latency.count == 75 and len(bodies) == 100 and progress[-1] == 100
    assert result.achieved_rate > 0


def test_the_command_line_hides_the_api_key_and_url_passwords() -> None:
    shown = command_line(["uoom", "bench", "orders", "--api-key", "uoom_s3cret", "--against", "http://u:pw@h/"])
    assert "uoom_s3cret" not in shown and "pw" not in shown and shown.startswith("uoom bench orders --api-key")
    assert "s3cret" not in command_line(["uoom", "bench", "--api-key=uoom_s3cret"])


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["/venv/bin/python", "-m", "commands", "serve", "--port", "1"], "api"),
        (["/venv/bin/uoom", "relay"], "relay"),
        (["python", "-m", "commands", "optimizer"], "optimizer"),
        (["/venv/bin/uoom", "relay", "--check"], None),
        (["/venv/bin/uoom", "bench", "orders"], None),
        (["postgres: uoom idle"], None),
    ],
)
def test_daemons_are_found_by_their_command_line(argv: list[str], name: str | None) -> None:
    assert _daemon_name(argv) == name


def _books(**problems: Any) -> Books:
    fields: dict[str, Any] = {"missing_in_postgres": [], "missing_in_read_model": [], "stale_in_read_model": [],
                              "missing_events": [], "out_of_order": [], "conflicting_duplicates": []}  # fmt: skip
    fields.update(problems)
    return Books(orders=12, seconds=1.5, checked=("postgres", "read model", "kafka"), **fields)


def test_books_hold_only_without_a_problem_and_ok_only_when_every_part_was_checked() -> None:
    assert _books().ok and _books().holds
    assert _books().lines() == ["books hold for 12 orders (checked: postgres, read model, kafka; 1.5 s)"]
    unchecked = Books(**{**_books().__dict__, "unchecked": {"kafka": "no answer in time"}})
    assert unchecked.holds and not unchecked.ok
    assert unchecked.lines()[-1] == "not checked: kafka (no answer in time)"
    many = [f"id{i:02}" for i in range(12)]
    broken = _books(missing_events=many)
    assert not broken.holds and not broken.ok
    assert broken.lines()[1] == f"12 without order.created on Kafka: {', '.join(many[:10])} and 2 more"
    assert broken.as_json()["missing_events"] == many and broken.as_json()["ok"] is False


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["orders", "--rate", "0", "--duration", "3"], 2, "--rate must be above 0"),
        (["orders", "--rate", "-5", "--duration", "3"], 2, "--rate must be above 0"),
        (["orders", "--rate", "5", "--duration", "0"], 2, "--duration must be above 0"),
        (["sideways", "--rate", "5", "--duration", "1"], 2, "unknown scenario 'sideways'"),
        (["orders", "--rate", "5", "--duration", "1", "--against", "ftp://x"], 2, "--against must be an http(s) URL"),
        (["mixed", "--rate", "5", "--duration", "1", "--status-share", "2"], 2, "--status-share must be within 0-1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, says: str
) -> None:
    monkeypatch.setenv("UOOM_API_KEY", "k")
    result = runner.invoke(app, ["bench", *args])
    assert result.exit_code == code, result.output
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_no_api_key_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UOOM_API_KEY", raising=False)
    result = runner.invoke(app, ["bench", "orders", "--rate", "5", "--duration", "1"])
    assert result.exit_code == 2 and "no API key" in result.stderr


def test_an_unreachable_api_is_one_line_and_exit_1() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    result = runner.invoke(app, ["bench", "orders", "--rate", "5", "--duration", "1", "--against", url,
                                 "--api-key", "k"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert f"the API at {url} is not answering" in result.stderr and len(result.stderr.strip().splitlines()) == 1
