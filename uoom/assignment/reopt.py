"""Rolling re-optimization: re-solve the deliveries not picked up yet, keep only real gains.

Every move (to another channel, or out of the fallback onto a channel) pays a switching cost of
`threshold` points (+ 1 milli-point, so a move must beat it strictly) and, away from a channel, that
channel's fee (`fee_share` x its base cost, dollars at the cost weight) inside the objective, so the
optimum moves an order only when its gain net of the fee is positive. Moves leave `reserve` slots
free on every channel for the orders that arrive before the next round (a move must not take the
slot the next order would have used); where fewer are free, moves into the channel only swap.
Staying is always feasible: the current deliveries' slots are lifted off their channels' load
first, and a channel keeps at least the slots its own orders hold. An order on a channel never
moves to the fallback. Time is measured from now: the current channel's ETA is what remains of it
(`CurrentAssignment.eta_seconds`), an alternative's ETA starts now. On any solver trouble the
answer is "no moves".
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from time import perf_counter

from uoom.assignment.costs import (
    NO_CHANNEL,
    SCALE,
    CostTable,
    channel_terms,
    dollars,
    fallback_points,
    objective,
    scaled,
)
from uoom.assignment.engine import DEFAULT_DEADLINE_MS, DEFAULT_FALLBACK_PENALTY, DEFAULT_WEIGHTS, MARGIN_S
from uoom.assignment.exact import exact_choice
from uoom.assignment.geo import haversine_km
from uoom.assignment.model import CurrentAssignment, Reassignment
from uoom.domain.channels import Channel, Weights

log = logging.getLogger(__name__)


def reoptimize(
    current: Sequence[CurrentAssignment],
    channels: Sequence[Channel],
    weights: Weights = DEFAULT_WEIGHTS,
    *,
    threshold: float = 1.0,
    fee_share: float = 0.0,
    reserve: int = 0,
    deadline_ms: float = DEFAULT_DEADLINE_MS,
    fallback_penalty: float = DEFAULT_FALLBACK_PENALTY,
) -> list[Reassignment]:
    """The moves worth making. `channels[*].load` counts the deliveries of `current` on them; a
    delivery whose channel is unknown (e.g. disabled) is treated as being in the fallback. A move away
    from a channel pays that channel `fee_share` x its base cost (dollars, at the cost weight), so a
    move is made only when it gains more than its fee (+ `threshold`); the move carries that fee in
    dollars. No channel ends the round with fewer than `reserve` free slots through a move (or with
    fewer than it has, where it has fewer). The caller passes only orders still movable (the
    cut-off: their courier has not reached the restaurant; not in a two-order trip)."""
    start = perf_counter()
    index = {c.id: j for j, c in enumerate(channels)}
    now_on = [index.get(a.channel_id, NO_CHANNEL) if a.channel_id else NO_CHANNEL for a in current]
    held = Counter(j for j in now_on if j != NO_CHANNEL)
    lifted = [replace(c, load=max(c.load - held[j], 0)) for j, c in enumerate(channels)]
    free = [max(c.free - max(reserve, 0), held[j]) for j, c in enumerate(lifted)]
    terms = channel_terms(lifted, weights)
    open_terms = [t for t in terms if free[t.channel] > 0]
    switch = scaled(threshold) + 1
    fee_points = weights.normalized().cost * fee_share
    options: list[list[tuple[int, int]]] = []
    fallback: list[int | None] = []
    distances: list[float] = []
    for a, cur in zip(current, now_on, strict=True):
        d = haversine_km(a.delivery.pickup, a.delivery.dropoff)
        fee = scaled(fee_points * channels[cur].base_cost) if cur != NO_CHANNEL else 0
        row = [
            (t.channel, t.cost(d, t.eta(d, a.delivery.ready_at)) + switch + fee)
            for t in open_terms
            if t.channel != cur and d <= t.radius_km
        ]
        if cur == NO_CHANNEL:
            penalty = scaled(fallback_points(a.delivery.ready_at, weights, fallback_penalty))
            row = [(j, c) for j, c in row if c < penalty]
            fallback.append(penalty)
        else:
            t = terms[cur]
            eta = a.eta_seconds if a.eta_seconds is not None else t.eta(d, a.delivery.ready_at)
            row.append((cur, t.cost(d, eta)))
            fallback.append(None)
        options.append(row)
        distances.append(d)
    table = CostTable(options, fallback, free, distances)
    if deadline_ms / 1000 - (perf_counter() - start) - MARGIN_S <= 0:
        return []
    try:
        choice = exact_choice(table)  # a pure assignment: the min-cost flow's exact optimum
    except Exception:  # re-optimization is an improvement, never a reason to fail
        log.exception("re-optimization failed on %d deliveries", len(current))
        return []
    if objective(table, choice) >= objective(table, now_on):
        return []
    moves = []
    for i, (a, old, new) in enumerate(zip(current, now_on, choice, strict=True)):
        if new == old:
            continue
        costs = dict(options[i])
        before = costs[old] if old != NO_CHANNEL else fallback[i] or 0  # a fallen-back order has a fallback
        after = costs[new] - switch  # the gain is net of the fee, before the threshold
        t, d = terms[new], distances[i]
        paid = fee_share * channels[old].base_cost if old != NO_CHANNEL else 0.0
        moves.append(
            Reassignment(
                a.delivery.order_id,
                a.channel_id,
                channels[new].id,
                Decimal(f"{dollars(d, channels[new]):.2f}"),
                round(t.eta(d, a.delivery.ready_at)),
                (before - after) / SCALE,
                Decimal(f"{paid:.2f}"),
            )
        )
    log.debug("re-optimization: %d of %d deliveries move", len(moves), len(current))
    return moves
