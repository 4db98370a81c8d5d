"""What one look at the platform holds: the dashboard's panels read a `Snapshot`, and
`uoom dash --once --json` prints it (`Snapshot.as_json`, docs/dashboard.md). Plain values, no I/O:
`tui/sources.py` fills it, `tui/trends.py` keeps its history, the widgets only draw it.

Every panel can be partly unknown: a number is `None` when its source did not answer (the
source's row in `health` says why), never a made-up zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# A source's state, as the health strip colours it.
UP, DEGRADED, DOWN, UNKNOWN = "up", "degraded", "down", "unknown"
# A latency against its SLO: ok, warn (P99 at WARN_FRACTION of the SLO or more), breach (over it).
OK, WARN, BREACH, IDLE = "ok", "warn", "breach", "idle"
WARN_FRACTION = 0.8
ROUTE_GROUPS = ("create", "status", "batch", "other")
STORES = ("postgres", "redis", "kafka", "dynamodb", "dax")
DAEMONS = ("api", "optimizer", "relay")


@dataclass(frozen=True)
class SourceHealth:
    """One row of the health strip: a store or a daemon."""

    name: str  # one of STORES or DAEMONS
    state: str  # UP | DEGRADED | DOWN | UNKNOWN
    detail: str  # one line: what it is ("PostgreSQL 16.4", "ok, up 3 min") or what is wrong
    error: str | None = None  # the last error (`Type: message`), shown when the row has focus


@dataclass(frozen=True)
class Percentiles:
    """Over the daemon's last 60 s (docs/metrics.md): milliseconds, `None` when nothing was seen."""

    count: int
    rate_per_second: float
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True)
class RouteGroupLatency:
    """An API route group: create (POST /api/orders), status (GET .../status), batch
    (POST /api/orders/status:batch), other (every other route: percentiles are the worst route's)."""

    group: str  # one of ROUTE_GROUPS
    latency: Percentiles | None  # None: the API did not answer
    error_rate: float | None  # 5xx share of responses over the last 60 s; None: no responses
    slo_ms: float
    level: str  # OK | WARN | BREACH | IDLE (no traffic, or unknown)


@dataclass(frozen=True)
class OutboxView:
    """The outbox table as PostgreSQL has it now, and the relay's own figures."""

    pending: int | None
    lag_seconds: float | None  # age of the oldest unpublished event
    in_backoff: int | None
    dead_letters_open: int | None
    publish_rate: float | None  # events/s published, over the last 60 s (relay counters)
    commit_to_ack_p99_ms: float | None


@dataclass(frozen=True)
class RankedChannel:
    rank: int  # 1 = best
    channel_id: str
    score: float  # composite
    criteria: dict[str, float | None]  # per-criterion score: cost, latency, quality, capacity
    load: int | None  # in-flight orders
    capacity: int | None  # from the registry; None when PostgreSQL did not answer


@dataclass(frozen=True)
class ChannelsView:
    ranking: list[RankedChannel]  # best first; empty when Redis did not answer or nothing is ranked
    weights: dict[str, float] | None  # cost, time, quality, capacity


@dataclass(frozen=True)
class OptimizerView:
    solve_p99_ms: float | None
    batch_orders_p50: float | None
    batch_orders_p99: float | None
    status_mix: dict[str, float]  # share of solves by solver status, plus "FALLBACK" (orders); sums to 1
    api_fallback_rate: float | None  # from the API: share of choices not made by the optimizer
    breaker: str | None  # the API's optimizer breaker: closed | opened | half-opened
    reassignments_per_minute: float | None
    # two-order trips the optimizer planned since it started: new pairs, joins of open trips, and the
    # share of its answered orders that ride two to a courier (2 x (pairs + joins) / orders)
    trip_pairs: int | None = None
    trip_joins: int | None = None
    riding_two_share: float | None = None
    # dispatch_policy in-time: the held orders its rounds place per minute, and the due ones the
    # last round could not place (every channel in reach full)
    dispatch_policy: str | None = None
    held_per_minute: float | None = None
    held_due_unplaced: int | None = None


@dataclass(frozen=True)
class Snapshot:
    taken_at: str  # ISO 8601, UTC
    refresh_seconds: float
    health: list[SourceHealth]  # STORES then DAEMONS, in that order; dax only when configured
    latency: list[RouteGroupLatency]  # ROUTE_GROUPS order
    requests_per_second: float | None  # every API route, last 60 s
    outbox: OutboxView
    channels: ChannelsView
    optimizer: OptimizerView
    problems: list[str] = field(default_factory=list)  # the daemons' own problem lines, prefixed by daemon

    def as_json(self) -> dict[str, Any]:
        """camelCase keys, as docs/dashboard.md shows."""
        return _camel(asdict(self))


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel_key(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    if key.isupper() or "_" not in key:  # status names (OPTIMAL) and one-word keys stay as they are
        return key
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def level(p99_ms: float | None, slo_ms: float) -> str:
    """A P99 against its SLO: IDLE when unknown, WARN from WARN_FRACTION of the SLO, BREACH above it."""
    if p99_ms is None:
        return IDLE
    if p99_ms > slo_ms:
        return BREACH
    return WARN if p99_ms >= WARN_FRACTION * slo_ms else OK
