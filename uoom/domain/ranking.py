"""The composite channel ranking as plain arithmetic: one score per criterion in 0..1 (higher is
better, min-max normalised across the channels), and their weighted sum. uoom/rankings.py keeps it in
Redis for the daemons; the replay of a day (uoom/replay/) computes it the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from uoom.domain.channels import Channel, Weights

TYPICAL_TRIP_KM = 3.0
# weight criterion -> the criterion's score (the time weight weighs latency)
SCORE_OF = {"cost": "cost", "time": "latency", "quality": "quality", "capacity": "capacity"}


def criterion_scores(channels: Sequence[Channel]) -> dict[str, dict[str, float]]:
    """cost (cheaper), latency (faster: pickup latency + a 3 km ride), quality (on-time rate),
    capacity (share of slots free)."""
    raw = {
        "cost": {c.id: -(c.base_cost + c.cost_per_km * TYPICAL_TRIP_KM) for c in channels},
        "latency": {c.id: -(c.pickup_latency_min + TYPICAL_TRIP_KM / c.speed_kmh * 60) for c in channels},
        "quality": {c.id: c.quality for c in channels},
        "capacity": {c.id: (c.free / c.capacity if c.capacity else 0.0) for c in channels},
    }
    return {name: _normalise(values) for name, values in raw.items()}


def _normalise(values: Mapping[str, float]) -> dict[str, float]:
    if not values:
        return {}
    low, high = min(values.values()), max(values.values())
    span = high - low
    return {k: (v - low) / span if span else 1.0 for k, v in values.items()}


def ranked(channels: Sequence[Channel], weights: Weights) -> list[Channel]:
    """Best first by the weighted sum of the scores (Redis' ZUNIONSTORE with WEIGHTS); equal sums
    in descending id order, as ZREVRANGE returns them."""
    scores = criterion_scores(channels)
    composite = {c.id: sum(getattr(weights, w) * scores[s][c.id] for w, s in SCORE_OF.items()) for c in channels}
    return sorted(channels, key=lambda c: (composite[c.id], c.id), reverse=True)
