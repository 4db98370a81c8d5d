"""Settings: UOOM_ names, the seed's names, masking."""

from __future__ import annotations

import pytest

from uoom.config import Settings, mask_url


def test_seed_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAMODB_ENDPOINT", "http://ddb:9000")
    monkeypatch.setenv("DAX_ENDPOINT", "dax.example:8111")
    monkeypatch.setenv("ORDER_CACHE_TTL_HOURS", "24")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    s = Settings(_env_file=None)
    assert (s.dynamodb_endpoint, s.dax_endpoint, s.order_cache_ttl_hours, s.aws_region) == (
        "http://ddb:9000",
        "dax.example:8111",
        24,
        "eu-west-1",
    )


def test_defaults_match_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ORDER_CACHE_TTL_HOURS", "UOOM_ORDER_CACHE_TTL_HOURS", "DAX_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    s = Settings(_env_file=None)
    assert s.order_cache_ttl_hours == 72
    assert (s.api_port, s.optimizer_port, s.relay_metrics_port) == (3001, 3002, 3003)
    assert s.dynamodb_table == "uoom-order-status"
    assert s.dax_endpoint == ""


def test_the_default_dispatch_policy_is_the_one_that_won_the_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """in-time (bench/reports/optimizer.md); the test session itself runs rolling (tests/conftest.py)."""
    monkeypatch.delenv("UOOM_DISPATCH_POLICY")
    assert Settings(_env_file=None).dispatch_policy == "in-time"


def test_masked_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UOOM_DATABASE_URL", "postgresql://app:hunter2@db:5432/uoom")
    monkeypatch.setenv("UOOM_REDIS_URL", "redis://:s3cret@cache:6379/0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "topsecretkey")
    text = repr(Settings(_env_file=None).masked())
    for secret in ("hunter2", "s3cret", "topsecretkey"):
        assert secret not in text
    assert "postgresql://app:********@db:5432/uoom" in text


def test_mask_url_leaves_urls_without_password_alone() -> None:
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_bad_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_CACHE_TTL_HOURS", "0")
    with pytest.raises(ValueError, match="ORDER_CACHE_TTL_HOURS"):
        Settings(_env_file=None)
