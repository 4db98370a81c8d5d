"""Static priority: each delivery takes the first channel of a fixed list with a free slot in range."""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

from uoom.assignment.costs import NO_CHANNEL, channel_terms, fallback_points, scaled, to_assignments
from uoom.assignment.geo import haversine_km
from uoom.assignment.model import Delivery, Result
from uoom.domain.channels import Channel, Weights


def static_priority(
    deliveries: Sequence[Delivery],
    channels: Sequence[Channel],
    priority: Sequence[str],
    weights: Weights,
    fallback_penalty: float,
) -> Result:
    """Channels missing from `priority` come after it, in their given order. `weights` only score
    the answer (Result.objective), they do not steer it."""
    start = perf_counter()
    index = {c.id: j for j, c in enumerate(channels)}
    ranked = [index[cid] for cid in priority if cid in index]
    ranked += [j for j in range(len(channels)) if j not in ranked]
    terms = channel_terms(channels, weights)
    remaining = [c.free for c in channels]
    choice, distances, total = [], [], 0
    for delivery in deliveries:
        d = haversine_km(delivery.pickup, delivery.dropoff)
        pick = next((j for j in ranked if remaining[j] > 0 and d <= channels[j].radius_km), NO_CHANNEL)
        if pick == NO_CHANNEL:
            total += scaled(fallback_points(delivery.ready_at, weights, fallback_penalty))
        else:
            remaining[pick] -= 1
            total += terms[pick].cost(d, terms[pick].eta(d, delivery.ready_at))
        choice.append(pick)
        distances.append(d)
    assignments = to_assignments(deliveries, channels, distances, choice, fallback_penalty)
    return Result(assignments, "FEASIBLE", (perf_counter() - start) * 1000, total)
