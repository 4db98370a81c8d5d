"""Every Redis key uoom uses, in one place, all under `uoom:`."""

from __future__ import annotations

PREFIX = "uoom:"
RANK_COMPOSITE = PREFIX + "rank:composite"  # ZSET channel id -> weighted score (higher is better)
WEIGHTS = PREFIX + "weights"  # HASH criterion -> weight
CHANNEL_LOAD = PREFIX + "channel:load"  # HASH channel id -> orders in flight
OBSERVED_QUALITY = PREFIX + "channel:observed-quality"  # HASH channel id -> on-time moving average
ORDER_SLOT = PREFIX + "order:channel"  # HASH order id -> the channel whose slot (load) it holds
ORDER_TRIP = PREFIX + "order:trip"  # HASH order id -> the trip whose one slot it shares (rankings.move_load)
TRIP_RIDERS = PREFIX + "trip:riders"  # HASH "trip id|channel id" -> the trip's orders holding that slot
# STRING per order: its version the load last applied, kept a week (the outbox's retention) after
# the last event, so a late, older event cannot move or re-take its slot (rankings.move_load)
LOAD_VERSION_TTL_SECONDS = 7 * 24 * 3600
# ZSET key hash -> when revoked, the last day's; and the pub/sub channel that announces each one
REVOKED_API_KEYS = PREFIX + "apikeys:revoked"


def order_load_version(order_id: str) -> str:
    return f"{PREFIX}order:{order_id}:load-version"


def rank_key(criterion: str) -> str:
    """One ZSET per criterion (capacity, quality, latency, cost)."""
    return f"{PREFIX}rank:{criterion}"


def rate_limit_key(key_id: str, second: int) -> str:
    return f"{PREFIX}rl:{key_id}:{second}"
