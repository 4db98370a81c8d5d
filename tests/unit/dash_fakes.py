"""A source for the dashboard's pilot and snapshot tests: snapshots built here, trends filled
with fixed readings, so what the screen shows is known to the digit."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tui.model import (
    BREACH,
    DOWN,
    IDLE,
    OK,
    UP,
    WARN,
    ChannelsView,
    OptimizerView,
    OutboxView,
    Percentiles,
    RankedChannel,
    RouteGroupLatency,
    Snapshot,
    SourceHealth,
)
from tui.trends import OUTBOX, P99, RPS, Trends

TAKEN_AT = "2026-11-30T19:42:07+00:00"
NOW = 10_000.0  # the fake trends' clock


def health(**states: str) -> list[SourceHealth]:
    details = {"postgres": "PostgreSQL 16.4 · 2 ms", "redis": "Redis 7.4 · 0.4 ms", "kafka": "3 brokers · 9 ms",
               "dynamodb": "uoom-order-status · 11 ms", "api": "ok · up 3 h 12 min", "optimizer": "ok · up 3 h 12 min",
               "relay": "ok · up 3 h 11 min"}  # fmt: skip
    rows = []
    for name, detail in details.items():
        state = states.get(name, UP)
        error = None if state == UP else "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 6379)"
        rows.append(SourceHealth(name, state, detail if state == UP else "no answer", error))
    return rows


def latency(group: str, p50: float, p95: float, p99: float, rate: float, slo: float, level: str,
            errors: float | None = 0.0) -> RouteGroupLatency:  # fmt: skip
    seen = Percentiles(count=int(rate * 60), rate_per_second=rate, p50=p50, p95=p95, p99=p99, max=p99 * 1.3)
    return RouteGroupLatency(group, seen, errors, slo, level)


def ranked(rank: int, channel: str, score: float, scores: tuple[float, ...], load: int, capacity: int) -> RankedChannel:
    criteria = dict(zip(("cost", "latency", "quality", "capacity"), scores, strict=True))
    return RankedChannel(rank, channel, score, criteria, load, capacity)


RANKING = [
    ranked(1, "own-bikes", 0.8132, (0.91, 0.78, 0.88, 0.35), 26, 40),
    ranked(2, "ebike-coop", 0.7424, (0.84, 0.71, 0.71, 0.6), 12, 30),
    ranked(3, "restaurant-self", 0.7012, (1.0, 0.95, 0.59, 0.9), 5, 50),
    ranked(4, "own-cars", 0.6618, (0.72, 0.62, 0.76, 0.2), 20, 25),
    ranked(5, "partner-premium", 0.5531, (0.18, 1.0, 1.0, 0.7), 18, 60),
    ranked(6, "crowd-gig", 0.4976, (0.6, 0.0, 0.0, 0.83), 34, 200),
    ranked(7, "partner-beta", 0.4410, (0.42, 0.41, 0.29, 0.65), 28, 80),
    ranked(8, "partner-alpha", 0.3921, (0.2, 0.5, 0.47, 0.78), 26, 120),
]


def busy() -> Snapshot:
    """The dinner peak, all sources up: status reads near their SLO (amber), one channel full."""
    ranking = [*RANKING]
    ranking[3] = replace(ranking[3], load=25)  # own-cars at capacity: red
    return Snapshot(
        taken_at=TAKEN_AT,
        refresh_seconds=1.0,
        health=health(),
        latency=[
            latency("create", 18.4, 41.7, 63.2, 21.4, 100.0, OK),
            latency("status", 1.21, 2.94, 4.37, 312.8, 5.0, WARN),
            latency("batch", 6.02, 11.8, 17.5, 4.2, 50.0, OK),
            latency("other", 0.88, 2.1, 3.9, 1.5, 100.0, OK, errors=0.004),
        ],
        requests_per_second=339.9,
        outbox=OutboxView(
            pending=42,
            lag_seconds=0.31,
            in_backoff=0,
            dead_letters_open=2,
            publish_rate=43.6,
            commit_to_ack_p99_ms=7.42,
        ),
        channels=ChannelsView(ranking, {"cost": 0.4, "time": 0.3, "quality": 0.2, "capacity": 0.1}),
        optimizer=OptimizerView(
            solve_p99_ms=12.6,
            batch_orders_p50=1.0,
            batch_orders_p99=4.0,
            status_mix={"OPTIMAL": 0.968, "FEASIBLE": 0.021, "FALLBACK": 0.011},
            api_fallback_rate=0.013,
            breaker="closed",
            reassignments_per_minute=3.5,
            trip_pairs=12,
            trip_joins=148,
            riding_two_share=0.274,
        ),
        problems=[],
    )


def failing() -> Snapshot:
    """Redis down: the ranking gone, the API degraded and saying so, create over its SLO."""
    snap = busy()
    states = {"redis": DOWN}
    rows = [replace(s, state="degraded", detail="degraded · up 3 h 12 min") if s.name == "api" else s
            for s in health(**states)]  # fmt: skip
    return replace(
        snap,
        health=rows,
        latency=[
            latency("create", 48.0, 131.0, 212.0, 19.0, 100.0, BREACH, errors=0.021),
            *snap.latency[1:3],
            RouteGroupLatency("other", None, None, 100.0, IDLE),
        ],
        channels=ChannelsView([], None),
        optimizer=replace(snap.optimizer, breaker="opened", api_fallback_rate=0.31),
        problems=["api: redis down: ConnectionRefusedError", "api: optimizer breaker open"],
    )


LONG_ID = "partner-premium-late-night-express-couriers"


def widest() -> Snapshot:
    """The widest value each column can show: 4- and 5-digit loads and capacities, counts in the
    hundred thousands, latencies of minutes, every share at 100 %, a channel id longer than the panel."""
    snap = busy()
    ranking = list(snap.channels.ranking)
    ranking[0] = replace(ranking[0], load=9999, capacity=9999)
    ranking[1] = replace(ranking[1], load=584, capacity=400)
    ranking[2] = replace(ranking[2], channel_id=LONG_ID, load=12345, capacity=99999)
    most: dict[str, Any] = {"rate_per_second": 99_999.0, "p50": 12_345.6, "p95": 99_999.0, "p99": 123_456.0}
    latency = [replace(row, latency=Percentiles(count=1, max=None, **most), error_rate=1.0) for row in snap.latency]
    outbox = OutboxView(pending=123_456, lag_seconds=98_765.4, in_backoff=99_999, dead_letters_open=100_000,
                        publish_rate=12_345.6, commit_to_ack_p99_ms=99_999.9)  # fmt: skip
    optimizer = replace(snap.optimizer, solve_p99_ms=99_999.0, batch_orders_p50=999.0, batch_orders_p99=9999.0,
                        status_mix={"OPTIMAL": 0.33, "FEASIBLE": 0.33, "FALLBACK": 1.0, "UNKNOWN": 0.34},
                        api_fallback_rate=1.0, breaker="half-opened", reassignments_per_minute=99_999.0,
                        trip_pairs=123_456, trip_joins=99_999, riding_two_share=1.0)  # fmt: skip
    channels = replace(snap.channels, ranking=ranking)
    return replace(snap, latency=latency, outbox=outbox, optimizer=optimizer, channels=channels)


def trends(minutes: int = 15) -> Trends:
    """A quarter of an hour of one reading a second: daily wobbles, a spike on status reads."""
    clock = Trends(clock=lambda: NOW)
    points = minutes * 60
    shapes: dict[str, Callable[[int], float]] = {
        P99["create"]: lambda i: 55 + 12 * math.sin(i / 90),
        P99["status"]: lambda i: 2.5 + 1.2 * math.sin(i / 40) + (2.1 if 600 < i < 640 else 0.0),
        P99["batch"]: lambda i: 14 + 4 * math.sin(i / 120),
        P99["other"]: lambda i: 3 + math.sin(i / 70),
        RPS: lambda i: 300 + 60 * math.sin(i / 150),
        OUTBOX["pending"]: lambda i: 30 + 20 * abs(math.sin(i / 50)),
        OUTBOX["lag"]: lambda i: 0.2 + 0.15 * abs(math.sin(i / 50)),
        OUTBOX["publish"]: lambda i: 40 + 8 * math.sin(i / 150),
        OUTBOX["backoff"]: lambda i: 3.0 if 400 < i < 430 else 0.0,
        OUTBOX["dead"]: lambda i: 0.0 if i < 500 else 2.0,
        OUTBOX["ack"]: lambda i: 6 + 1.5 * math.sin(i / 30),
    }
    for name, shape in shapes.items():
        for i in range(points):
            clock.add(name, shape(i), at=NOW - points + i + 1)
    return clock


class FakeSources:
    """`fetch` answers the snapshots given, one per call (the last again once they run out), or
    raises when the next one is an exception; `calls` counts the fetches."""

    def __init__(self, *answers: Snapshot | BaseException, settings: Any = None, trends_: Trends | None = None):
        from uoom.config import Settings

        self.answers = list(answers) or [busy()]
        self.settings = settings or Settings()
        self.trends = trends_ or trends()
        self.calls = 0

    async def fetch(self) -> Snapshot:
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return answer
