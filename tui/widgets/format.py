"""How the panels write numbers: plain values in, strings out, no Textual. A number is shown
with about three significant figures and its unit; an unknown one as a dash, never a zero.
The trend cells are text sparklines drawn here, so a table cell can hold one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

NONE = "-"
BARS = "▁▂▃▄▅▆▇█"


def num(value: float | None, unit: str = "") -> str:
    """4.87, 12.3, 123, 1234: three significant figures (two decimals below 10)."""
    if value is None or not math.isfinite(value):
        return NONE
    magnitude = abs(value)
    digits = 2 if magnitude < 10 else 1 if magnitude < 100 else 0
    text = f"{value:.{digits}f}"
    return f"{text} {unit}" if unit else text


def plain(value: float | None) -> str:
    """Counts that may be fractional (orders per solve): 1, 2.5."""
    return NONE if value is None else f"{value:.3g}"


def count(value: int | None) -> str:
    return NONE if value is None else str(value)


def share(value: float | None) -> str:
    """A 0..1 share as a percentage: 0.0123 -> 1.2%."""
    return NONE if value is None else f"{value * 100:.1f}%"


def buckets(values: Sequence[float], width: int, summary: Callable[[Sequence[float]], float] = max) -> list[float]:
    """`values` in at most `width` consecutive groups of (nearly) equal size, each summarised
    (the largest, by default: a spike is never averaged away)."""
    if width <= 0:
        return []
    if len(values) <= width:
        return list(values)
    size = len(values) / width
    return [summary(values[round(i * size) : round((i + 1) * size)]) for i in range(width)]


def bars(values: Sequence[float | None]) -> str:
    """One bar per value, scaled from zero to the largest: a quiet line stays low instead of
    being stretched to full height. No value (no reading then): a blank."""
    top = max((v for v in values if v is not None), default=0.0)
    last = len(BARS) - 1
    if top <= 0:
        return "".join(" " if v is None else BARS[0] for v in values)
    return "".join(" " if v is None else BARS[min(max(round(v / top * last), 0), last)] for v in values)


def columns(values: Sequence[float | None], height: int) -> list[str]:
    """Bars `height` rows tall (top row first), one column per value, scaled from zero to the
    largest: 8 steps a row, so a 3-row plot tells 24 heights apart. No value: a blank column."""
    top = max((v for v in values if v is not None), default=0.0)
    # zero: a thin line; no value: nothing
    steps = [0 if v is None else 1 if top <= 0 else max(round(v / top * 8 * height), 1) for v in values]
    blocks = " " + BARS
    return ["".join(blocks[min(max(s - 8 * row, 0), 8)] for s in steps) for row in reversed(range(height))]
