"""One Snapshot from one round of readings (tui/sources.py does the reading): the daemons'
metrics documents, the dashboard's own PostgreSQL and Redis reads, and its probes. Records the
round in the Trends first, so rates that need two readings include this one."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tui import trends as series
from tui.model import (
    DAEMONS,
    ROUTE_GROUPS,
    ChannelsView,
    OptimizerView,
    OutboxView,
    Percentiles,
    RankedChannel,
    RouteGroupLatency,
    Snapshot,
    level,
)  # fmt: skip
from tui.readings import Seen, daemon_health, group_latency, response_totals, section, status_mix, store_health
from tui.trends import Trends
from uoom.config import Settings
from uoom.domain.channels import CRITERIA, Weights
from uoom.stores.outbox import OutboxStatus

Document = Mapping[str, Any]
CRITERION_SCORES = ("cost", "latency", "quality", "capacity")  # the ranking's per-criterion ZSETs


@dataclass(frozen=True)
class PostgresReading:
    outbox: OutboxStatus
    capacity: dict[str, int]  # the channel registry: channel id -> capacity


@dataclass(frozen=True)
class RedisReading:
    ranking: list[dict[str, Any]]  # uoom.rankings.board
    loads: dict[str, int]
    weights: Weights | None


def assemble(settings: Settings, refresh: float, trends: Trends, documents: Mapping[str, tuple[Document | None, str]],
             seen: Mapping[str, Seen], postgres: PostgresReading | None, redis: RedisReading | None,
             now: float | None = None) -> Snapshot:  # fmt: skip
    """`documents`: each daemon's (document, why not); `seen`: the dashboard's own reading of each
    store (postgres, redis, kafka, dynamodb, and dax when configured)."""
    at = time.monotonic() if now is None else now
    docs = {name: documents.get(name, (None, "not read"))[0] for name in DAEMONS}
    api, optimizer, relay = docs["api"], docs["optimizer"], docs["relay"]
    health = [store_health(name, seen_, docs) for name, seen_ in seen.items()]
    health += [daemon_health(name, *documents.get(name, (None, "not read"))) for name in DAEMONS]
    latency, rps = _latency(settings, trends, api, at)
    snapshot = Snapshot(
        taken_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        refresh_seconds=refresh,
        health=health,
        latency=latency,
        requests_per_second=rps,
        outbox=_outbox(postgres, relay),
        channels=_channels(redis, postgres),
        optimizer=_optimizer(trends, optimizer, api, at),
        problems=[f"{name}: {line}" for name, doc in docs.items() for line in section(doc, "problems") or []],
    )
    _record(trends, snapshot, at)
    return snapshot


def _latency(settings: Settings, trends: Trends, api: Document | None,
             at: float) -> tuple[list[RouteGroupLatency], float | None]:  # fmt: skip
    grouped: dict[str, Percentiles] = {}
    errors: dict[str, float | None] = {}
    if api is not None:
        grouped = group_latency(section(api, "latency") or {})
        for group, (every, failed) in response_totals(section(api, "api", "responses") or {}).items():
            trends.add(f"api.responses.{group}", every, at)
            trends.add(f"api.errors.{group}", failed, at)
            errors[group] = trends.ratio(f"api.errors.{group}", f"api.responses.{group}")
    rows = []
    for group in ROUTE_GROUPS:
        found, slo = grouped.get(group), settings.slo_ms(group)
        rows.append(RouteGroupLatency(group, found, errors.get(group), slo, level(found.p99 if found else None, slo)))
    rps = round(sum(p.rate_per_second for p in grouped.values()), 3) if api is not None else None
    return rows, rps


def _outbox(postgres: PostgresReading | None, relay: Document | None) -> OutboxView:
    """The table as PostgreSQL has it now; when the dashboard cannot reach PostgreSQL, the relay's
    last reading of it (at most a second old)."""
    ack = section(relay, "latency", "commitToAck") or {}
    if postgres is not None:
        now = postgres.outbox
        table: dict[str, Any] = {"pending": now.pending, "lagSeconds": round(now.lag_seconds, 3),
                                 "inBackoff": now.in_backoff, "deadLetters": now.dead_letters_open}  # fmt: skip
    else:
        table = section(relay, "relay", "outbox") or {}
    return OutboxView(
        pending=table.get("pending"),
        lag_seconds=table.get("lagSeconds"),
        in_backoff=table.get("inBackoff"),
        dead_letters_open=table.get("deadLetters"),
        publish_rate=ack.get("ratePerSecond"),
        commit_to_ack_p99_ms=ack.get("p99"),
    )


def _channels(redis: RedisReading | None, postgres: PostgresReading | None) -> ChannelsView:
    if redis is None:
        return ChannelsView([], None)
    capacity = postgres.capacity if postgres is not None else None
    ranking = [
        RankedChannel(
            rank=rank,
            channel_id=row["channelId"],
            score=row["score"],
            criteria={c: row.get(c) for c in CRITERION_SCORES},
            load=redis.loads.get(row["channelId"], 0),
            capacity=None if capacity is None else capacity.get(row["channelId"]),
        )
        for rank, row in enumerate(redis.ranking, start=1)
    ]
    weights = None if redis.weights is None else {c: getattr(redis.weights, c) for c in CRITERIA}
    return ChannelsView(ranking, weights)


def _optimizer(trends: Trends, optimizer: Document | None, api: Document | None, at: float) -> OptimizerView:
    own = section(optimizer, "optimizer") or {}
    statuses: dict[str, int] = own.get("statuses") or {}
    mix: dict[str, float] = {}
    if optimizer is not None:
        for status, count in statuses.items():
            trends.add(f"optimizer.solves.{status}", count, at)
        trends.add("optimizer.fallbacks", own.get("fallbacks") or 0, at)
        trends.add("optimizer.reassignments", own.get("reassignments") or 0, at)
        trends.add("optimizer.heldAssigned", own.get("heldAssigned") or 0, at)
        mix = _recent_mix(trends, statuses, int(own.get("fallbacks") or 0))
    reassign = trends.rate("optimizer.reassignments") if optimizer is not None else None
    held = trends.rate("optimizer.heldAssigned") if optimizer is not None else None
    batch = own.get("batchOrders") or {}
    pairs, joins, two = _trips(own)
    return OptimizerView(
        solve_p99_ms=section(optimizer, "latency", "solve", "p99"),
        batch_orders_p50=batch.get("p50"),
        batch_orders_p99=batch.get("p99"),
        status_mix=mix,
        api_fallback_rate=section(api, "api", "assignment", "fallbackRate"),
        breaker=section(api, "api", "assignment", "breaker"),
        reassignments_per_minute=None if reassign is None else round(reassign * 60, 2),
        trip_pairs=pairs,
        trip_joins=joins,
        riding_two_share=two,
        dispatch_policy=own.get("dispatchPolicy"),
        held_per_minute=None if held is None else round(held * 60, 2),
        held_due_unplaced=own.get("heldDueUnplaced"),
    )


def _trips(own: Mapping[str, Any]) -> tuple[int | None, int | None, float | None]:
    """(pairs, joins, share of orders riding two) since the optimizer started; None from an
    optimizer without trips (its document has no `trips`), the share None before any order. The
    orders placed: those its answers placed, and the held ones its in-time rounds placed."""
    trips = own.get("trips")
    if not isinstance(trips, Mapping):
        return None, None, None
    pairs, joins = int(trips.get("pairs") or 0), int(trips.get("joins") or 0)
    assigned = (own.get("assigned") or 0) + (own.get("heldAssigned") or 0)
    return pairs, joins, min(2 * (pairs + joins) / assigned, 1.0) if assigned else None


def _recent_mix(trends: Trends, statuses: Mapping[str, int], fallbacks: int) -> dict[str, float]:
    """The mix over the last 60 s of readings; since the optimizer started on the first reading.
    A status whose counter appeared within the window grew from 0 to its value."""
    window = trends.increase("optimizer.fallbacks")
    if window is None:
        return status_mix(statuses, fallbacks)
    solves = {}
    for status, count in statuses.items():
        grown = trends.increase(f"optimizer.solves.{status}")
        solves[status] = count if grown is None else grown[0]
    return status_mix(solves, window[0])


def _record(trends: Trends, snapshot: Snapshot, at: float) -> None:
    """The series the widgets draw (tui/trends.py names them)."""
    for row in snapshot.latency:
        trends.add(series.P99[row.group], row.latency.p99 if row.latency else None, at)
    trends.add(series.RPS, snapshot.requests_per_second, at)
    outbox = snapshot.outbox
    values = {
        "pending": outbox.pending,
        "lag": outbox.lag_seconds,
        "publish": outbox.publish_rate,
        "backoff": outbox.in_backoff,
        "dead": outbox.dead_letters_open,
        "ack": outbox.commit_to_ack_p99_ms,
    }
    for key, value in values.items():
        trends.add(series.OUTBOX[key], value, at)
    trends.add(series.SOLVE_P99, snapshot.optimizer.solve_p99_ms, at)
