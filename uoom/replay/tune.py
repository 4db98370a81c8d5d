"""Weights tuning: one day of orders replayed under candidate weights, side by side, so an operator
picks weights with numbers (`uoom channels weights tune`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from uoom.domain.channels import Channel, Weights
from uoom.replay.books import Rules
from uoom.replay.day import SimOrder
from uoom.replay.policies import replay

# the product's policies: dispatch() per order, + re-optimization, and holding orders until near ready
POLICIES = ("at-once", "rolling", "in-time")
# The small sensible set next to the weights in use (the day's defaults are Weights()).
SUGGESTED = (
    ("day defaults", Weights()),
    ("cost only", Weights(1.0, 0.0, 0.0, 0.0)),
    ("cost-heavy", Weights(0.7, 0.2, 0.1, 0.0)),
    ("time-heavy", Weights(0.2, 0.6, 0.2, 0.0)),
    ("quality-heavy", Weights(0.3, 0.2, 0.5, 0.0)),
)


@dataclass(frozen=True, slots=True)
class Candidate:
    label: str
    weights: Weights  # normalized


@dataclass(frozen=True, slots=True)
class ReplayDay:
    """What a replay needs: the orders (times in seconds from any origin), the channels with no
    load at the start, the rules, the fallback penalty; `name` says where the orders came from."""

    name: str
    orders: list[SimOrder]
    channels: list[Channel]
    rules: Rules
    penalty: float


def parse_candidate(text: str) -> Weights:
    """'cost=0.5,time=0.3,quality=0.2,capacity=0' -> the normalized weights (an unnamed criterion
    is 0). ValueError with the reason: not name=value, unknown criterion, not a number, negative,
    all zero."""
    raw: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"'{item.strip()}' is not name=value")
        if name.strip() in raw:
            raise ValueError(f"{name.strip()} given twice")
        raw[name.strip()] = value.strip()
    return Weights.from_mapping(raw)


def candidates(given: Sequence[str], current: Weights) -> list[Candidate]:
    """The operator's candidates in order (`--candidate`), or the weights in use followed by the
    suggested set; the same weights twice are replayed once (the suggested set names its twin:
    "current = day defaults")."""
    pool = [(text.strip(), parse_candidate(text)) for text in given] if given else [("current", current), *SUGGESTED]
    out: list[Candidate] = []
    for label, weights in pool:
        w = weights.normalized()
        twin = next((k for k, c in enumerate(out) if _same(w, c.weights)), None)
        if twin is None:
            out.append(Candidate(label, w))
        elif not given:
            out[twin] = Candidate(f"{out[twin].label} = {label}", w)
    return out


def _same(a: Weights, b: Weights) -> bool:
    return all(abs(x - y) < 1e-9 for x, y in zip(asdict(a).values(), asdict(b).values(), strict=True))


def run(
    day: ReplayDay,
    chosen: Sequence[Candidate],
    policy: str,
    progress: Callable[[int, Candidate, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Replay the day once per candidate under `policy`; one row of results each, in order.
    `progress(k, candidate, orders done)` as it goes."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    rows = []
    for k, c in enumerate(chosen):

        def tick(n: int, k: int = k, c: Candidate = c) -> None:
            if progress is not None:
                progress(k, c, n)

        s = replay(policy, day.orders, day.channels, day.rules, c.weights, day.penalty, [], on_order=tick)
        rows.append(
            {
                "candidate": k + 1,
                "label": c.label,
                "weights": {name: round(v, 4) for name, v in asdict(c.weights).items()},
                "dollars_per_delivered_order": s["dollars_per_delivered_with_penalties"],
                "dollars_per_delivered_order_trips_and_fees": s["dollars_per_delivered"],
                "on_time_rate": s["on_time_rate_all"],
                "orders": s["orders"],
                "delivered": s["delivered"],
                "fallbacks": s["fallbacks"],
                "moves": s["moves"],
                "fees_paid": s["fees_paid"],
                "trips_formed": s["trips_formed"],
                "books_faults": s["books_fault_count"],
            }
        )
    return rows


def best(rows: Sequence[dict[str, Any]], min_on_time: float = 0.0) -> int | None:
    """The 1-based candidate with the lowest $ per delivered order (fees and penalties included)
    among those on time at least `min_on_time` with sound books; a tie goes to the better on-time
    rate, then the earlier candidate. None when no candidate qualifies."""
    fit = [r for r in rows if r["on_time_rate"] >= min_on_time and not r["books_faults"]]
    if not fit:
        return None
    top = min(fit, key=lambda r: (round(r["dollars_per_delivered_order"], 6), -r["on_time_rate"], r["candidate"]))
    return int(top["candidate"])


def apply_target(which: str, count: int) -> int | None:
    """`--apply N` -> N (1-based, one of the `count` candidates), `--apply best` -> None (known only
    after the replay). ValueError otherwise, before anything is replayed."""
    if which == "best":
        return None
    if not which.isdigit() or not 1 <= int(which) <= count:
        raise ValueError(f"--apply takes 'best' or a candidate number 1..{count}, not {which!r}")
    return int(which)
