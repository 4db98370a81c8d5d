"""Settings from `UOOM_*` environment variables, a `.env` file, and the seed's own names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from uoom.redact import mask_url

__all__ = ["Settings", "mask_url"]


def _seed_name(name: str, *more: str) -> AliasChoices:
    """Accept the seed's variable name as well as the UOOM_ one."""
    return AliasChoices(f"UOOM_{name}", name, *more)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """'7d', '12h', '30m', '45s', '1w' or '604800' (seconds) -> timedelta; anything else is left
    to pydantic (ISO 8601 such as P7D)."""
    if isinstance(value, str):
        text = value.strip().lower()
        number, unit = (text[:-1], _UNITS[text[-1]]) if text[-1:] in _UNITS else (text, 1)
        try:
            return timedelta(seconds=float(number) * unit)
        except (ValueError, OverflowError):
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UOOM_", env_file=".env", extra="ignore", populate_by_name=True)

    home: Path = Field(Path(".uoom"), description="Local stack: data, logs, pid files, jars")
    debug: bool = Field(False, description="Show tracebacks instead of one-line errors (CLI and daemons)")

    database_url: SecretStr = Field(
        SecretStr("postgresql://uoom@127.0.0.1:5432/uoom"),
        description="PostgreSQL (write side) DSN",
    )
    database_pool_size: int = Field(10, ge=1, description="asyncpg pool size per process")
    migrate_lock_timeout_ms: int = Field(
        2000, ge=1, description="`uoom migrate` waits this long for a table lock (3 tries), then names who holds it"
    )
    redis_url: SecretStr = Field(SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_topic: str = Field("uoom.order-events", description="Order events topic")
    kafka_dlq_topic: str = Field("uoom.order-events.dlq", description="Dead-letter topic")
    kafka_partitions: int = Field(6, ge=1, description="Partitions when uoom creates the topics")

    dynamodb_endpoint: str = Field(
        "http://127.0.0.1:8000",
        validation_alias=_seed_name("DYNAMODB_ENDPOINT"),
        description="DynamoDB endpoint; empty for AWS itself",
    )
    dax_endpoint: str = Field(
        "",
        validation_alias=_seed_name("DAX_ENDPOINT"),
        description="DAX cluster endpoint (host:port); when set, status reads go through DAX",
    )
    aws_region: str = Field("us-east-1", validation_alias=_seed_name("AWS_REGION"), description="AWS region")
    aws_access_key_id: str = Field(
        "local",
        validation_alias=_seed_name("AWS_ACCESS_KEY_ID"),
        description="AWS key id (any value works locally)",
    )
    aws_secret_access_key: SecretStr = Field(
        SecretStr("local"),
        validation_alias=_seed_name("AWS_SECRET_ACCESS_KEY"),
        description="AWS secret key",
    )
    dynamodb_table: str = Field("uoom-order-status", description="Read-model table")
    dynamodb_server: Literal["auto", "dynoxide", "moto"] = Field(
        "auto", description="The local stack's DynamoDB server; auto: dynoxide when scripts/setup built it, else moto"
    )
    order_cache_ttl_hours: int = Field(
        72,
        ge=1,
        validation_alias=_seed_name("ORDER_CACHE_TTL_HOURS"),
        description="TTL of read-model items",
    )

    api_host: str = Field("127.0.0.1", description="Order API bind address")
    api_port: int = Field(3001, description="Order API port")
    api_url: str = Field("", description="Order API base URL for its clients (default from host/port)")
    optimizer_host: str = Field("127.0.0.1", description="Optimizer bind address")
    optimizer_port: int = Field(3002, description="Optimizer port")
    optimizer_url: str = Field("", description="Optimizer base URL (default from host/port)")
    optimizer_timeout_ms: int = Field(100, ge=1, description="API -> optimizer call timeout")
    # optimizer
    optimizer_batch_window_ms: float = Field(2.0, ge=0, description="Requests this close are solved together")
    optimizer_deadline_ms: float = Field(80.0, gt=0, description="Default deadline of a request, from its arrival")
    optimizer_token: SecretStr = Field(SecretStr(""), description="Key of POST /optimize; empty: UOOM_HOME's")
    optimizer_max_body_bytes: int = Field(262_144, ge=1024, description="Larger /optimize bodies get 413")
    # at least one request of the contract's most orders (500)
    optimizer_max_queued_orders: int = Field(2000, ge=500, description="Orders waiting for a solve; more: 503 at once")
    fallback_penalty: float = Field(25.0, ge=0, description="Objective points of leaving an order unassigned")
    bundle_ready_within_s: float = Field(
        300.0, ge=0, description="Two orders of one restaurant share a courier if ready this close (s)"
    )
    bundle_on_time_s: float = Field(
        2700.0, gt=0, description="A trip's every order is delivered within this of its creation (s)"
    )
    dispatch_policy: Literal["at-once", "rolling", "in-time"] = Field(
        "in-time",
        description="in-time: an order whose food is ready later than dispatch_lead_seconds is placed without a "
        "channel, and the optimizer's rounds assign it once it is that close to ready, pairing it with another or "
        "joining an open trip where a channel bundles (the API assigns those the optimizer leaves past due; "
        "the cheapest on the synthetic day, bench/reports/optimizer.md); rolling: an order's channel is chosen when "
        "it is placed, and every dispatch_interval the open orders move where a move gains more than its fee; "
        "at-once: chosen when placed, no moves",
    )
    dispatch_interval: float = Field(
        120.0, gt=0, description="Seconds between rolling re-optimizations (120: the interval that won the day)"
    )
    dispatch_lead_seconds: float = Field(
        480.0, ge=0, description="in-time: how long before its food is ready an order gets its channel (s)"
    )
    dispatch_release_interval: float = Field(
        30.0, gt=0, description="in-time: seconds between the optimizer's rounds that assign the held orders due"
    )
    dispatch_held_grace_seconds: float = Field(
        60.0,
        ge=0,
        description="in-time: how long past due a held order waits for the optimizer (at least 3 of "
        "its rounds) before the API assigns it itself (ranking, greedy, default)",
    )
    reassign_fee_share: float = Field(
        0.5, ge=0, description="A re-optimizer's move away from a channel pays this share of its base cost"
    )
    reopt_threshold: float = Field(1.0, ge=0, description="Points a move must gain to be committed")
    reopt_max_orders: int = Field(500, ge=1, description="Open orders re-solved per round, oldest first")
    # api
    api_workers: int = Field(1, ge=1, description="uvicorn worker processes for `uoom serve`")
    api_max_body_bytes: int = Field(65536, ge=1024, description="Larger request bodies get 413")
    api_request_timeout_ms: int = Field(3000, ge=100, description="A request gives up (503) after")
    api_rate_limit_per_second: int = Field(500, ge=1, description="Requests per second per API key")
    api_metrics_require_key: bool = Field(False, description="Put /metrics and /api/metrics behind a key")
    breaker_failure_threshold: int = Field(
        5, ge=1, description="Optimizer failures in breaker_window_seconds, half its calls or more, open the breaker"
    )
    breaker_window_seconds: float = Field(5.0, gt=0, description="The breaker counts the calls of this long")
    breaker_recovery_seconds: float = Field(5.0, gt=0, description="Open breaker waits before a trial")
    default_channel_id: str = Field("", description="Last-resort channel when nothing else assigns one")
    status_cache_ttl_ms: int = Field(
        30_000, ge=0, description="API status cache entry lifetime: the most a read lags if events stop; 0 off"
    )
    status_cache_size: int = Field(100_000, ge=0, description="Entries in the in-process status cache")
    read_model_timeout_ms: int = Field(
        250, ge=1, description="A DynamoDB/DAX call of a request gives up after; PostgreSQL answers"
    )
    relay_metrics_port: int = Field(3003, description="Relay metrics port")
    # relay
    relay_metrics_host: str = Field("127.0.0.1", description="Relay metrics bind address")
    relay_url: str = Field("", description="Relay metrics base URL for its readers (default from host/port)")
    relay_poll_interval: float = Field(
        5.0, gt=0, description="Outbox poll period, the safety net behind LISTEN/NOTIFY (s)"
    )
    relay_batch_size: int = Field(500, ge=1, description="Events claimed per batch (oldest per order)")
    relay_concurrency: int = Field(4, ge=1, description="Batches in flight per relay process")
    relay_gather_ms: float = Field(
        5.0, ge=0, le=1000, description="After a wake-up, wait this long so one batch takes the commits that follow"
    )
    relay_retry_base_seconds: float = Field(1.0, gt=0, description="First retry delay; doubles each try")
    relay_max_attempts: int = Field(4, ge=1, description="Publish attempts before the dead-letter queue")
    relay_projector: bool = Field(True, description="Run the read-model projector in the relay process")
    relay_projector_group: str = Field("uoom-projector", description="Projector's Kafka consumer group")
    relay_prune_interval: float = Field(600.0, ge=0, description="Outbox prune period (s); 0 disables")
    outbox_retention: Duration = Field(
        timedelta(days=7), description="Published outbox rows older than this are pruned"
    )
    # health: `uoom dax health` and `uoom doctor`
    dax_cluster_name: str = Field("", description="DAX cluster name; default: DAX_ENDPOINT's first DNS label")
    dax_control_endpoint: str = Field("", description="DAX control-plane endpoint URL; empty for AWS's")
    cloudwatch_endpoint: str = Field("", description="CloudWatch endpoint URL; empty for AWS's")
    dax_probes: int = Field(50, ge=0, le=10_000, description="GetItems per latency probe of `uoom dax health`; 0 skips")
    dax_max_p99_ms: float = Field(5.0, ge=0, description="DAX probe P99 above this is degraded (ms)")
    dynamodb_max_p99_ms: float = Field(100.0, ge=0, description="Direct DynamoDB probe P99 above this is degraded (ms)")
    dax_max_cpu_percent: float = Field(80.0, ge=0, le=100, description="DAX cluster CPU above this is degraded (%)")
    check_timeout: float = Field(3.0, gt=0, le=60, description="Seconds one health check may take (doctor, dax health)")
    doctor_max_outbox_lag: float = Field(60.0, ge=0, description="`uoom doctor` fails when the outbox lag is over (s)")
    doctor_max_dead_letters: int = Field(0, ge=0, description="`uoom doctor` fails above this many open dead letters")
    # the dashboard: `uoom dash`
    dash_refresh: float = Field(1.0, ge=0.1, le=3600, description="Seconds between the dashboard's reads")
    dash_slo_create_ms: float = Field(100.0, gt=0, description="P99 SLO of order creation (ms)")
    dash_slo_status_ms: float = Field(5.0, gt=0, description="P99 SLO of status reads (ms)")
    dash_slo_batch_ms: float = Field(50.0, gt=0, description="P99 SLO of batch status reads (ms)")
    dash_slo_other_ms: float = Field(100.0, gt=0, description="P99 SLO of every other API route (ms)")

    @property
    def effective_dax_cluster_name(self) -> str:
        """The cluster name, or DAX_ENDPOINT's first DNS label (`dax://name.x.dax-clusters...:8111` -> name)."""
        if self.dax_cluster_name or not self.dax_endpoint:
            return self.dax_cluster_name
        host = self.dax_endpoint.split("://", 1)[-1].rsplit(":", 1)[0]
        return host.split(".", 1)[0]

    def service_urls(self) -> dict[str, str | None]:
        """Every service's URL with secrets masked, for `uoom config` and scripts; None: not configured."""
        urls = {
            "postgres": self.database_url.get_secret_value(),
            "redis": self.redis_url.get_secret_value(),
            "kafka": self.kafka_bootstrap,
            "dynamodb": self.dynamodb_endpoint or f"aws:{self.aws_region}",
            "dax": self.dax_endpoint or None,
            "api": self.effective_api_url,
            "optimizer": self.effective_optimizer_url,
            "relay": self.effective_relay_url,
        }
        return {name: mask_url(url) if url else url for name, url in urls.items()}  # any URL may carry one

    @property
    def effective_api_url(self) -> str:
        return (self.api_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def effective_optimizer_url(self) -> str:
        return self.optimizer_url or f"http://{self.optimizer_host}:{self.optimizer_port}"

    @property
    def effective_relay_url(self) -> str:
        return (self.relay_url or f"http://{self.relay_metrics_host}:{self.relay_metrics_port}").rstrip("/")

    def slo_ms(self, group: str) -> float:
        """The dashboard's P99 SLO of an API route group (create, status, batch, other)."""
        return float(getattr(self, f"dash_slo_{group}_ms"))

    def masked(self) -> dict[str, object]:
        """All settings as plain JSON values, secrets masked."""
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                value = mask_url(raw) if "://" in raw else "********" if raw else ""  # empty: not set
            elif isinstance(value, str):  # an endpoint's URL may carry a password too
                value = mask_url(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        out["urls"] = self.service_urls()
        return out


def env_name(field: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable that sets a field: the one present in the environment, else its main name."""
    info = Settings.model_fields[field]
    names = list(getattr(info.validation_alias, "choices", None) or [f"UOOM_{field.upper()}"])
    present = {k.upper() for k in (os.environ if environ is None else environ)}
    return next((n for n in names if isinstance(n, str) and n.upper() in present), str(names[0]))


def field_for(name: str) -> str | None:
    """A field name from a name in a validation error's location (the field or one of its aliases)."""
    for field, info in Settings.model_fields.items():
        aliases = getattr(info.validation_alias, "choices", None) or []
        if name == field or name in aliases:
            return field
    return None


def accepted_forms(field: str) -> str:
    """What a field accepts, in words, for the one-line error about a bad value."""
    info = Settings.model_fields[field]
    kind = info.annotation
    if kind is bool:
        return "true or false (also 1/0, yes/no, on/off)"
    if kind is timedelta:
        return "a duration: 7d, 12h, 30m, 45s, 1w, seconds (604800) or ISO 8601 (P7D)"
    if kind is SecretStr:
        return "a URL such as " + mask_url(info.get_default().get_secret_value())
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(map(str, get_args(kind)))
    words = {int: "a whole number", float: "a number", Path: "a path", str: "text"}.get(kind, "a value")  # type: ignore[arg-type]
    bounds = [
        f"{symbol} {getattr(m, attr)}"
        for m in info.metadata
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if getattr(m, attr, None) is not None
    ]
    return " ".join([words, *bounds])
