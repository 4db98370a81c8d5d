"""How the panels write numbers: plain values in, strings out, no Textual. A number is shown
with about three significant figures and its unit; an unknown one as a dash, never a zero.
The trend cells are text sparklines drawn here, so a table cell can hold one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

NONE = "-"
BARS = "▁▂▃▄▅▆▇█"


def num(value: float | None, unit: str = "") -> str:
    """4.87, 12.3, 123, 1234, then 12.3k, 123k, 1.23M: three significant figures (two decimals
    below 10), at most five characters before the unit, so a table's column holds any of them."""
    if value is None or not math.isfinite(value):
        return NONE
    magnitude = abs(value)
    digits = 2 if magnitude < 9.995 else 1 if magnitude < 99.95 else 0
    text = f"{value:.{digits}f}" if magnitude < 9999.5 else _thousands(value)
    return f"{text} {unit}" if unit else text


def _thousands(value: float) -> str:
    """12.3k, 123k, 1.23M, ...: three significant figures and a suffix."""
    for suffix in "kMGT":
        value /= 1000
        if abs(value) < 999.5 or suffix == "T":
            digits = 2 if abs(value) < 9.995 else 1 if abs(value) < 99.95 else 0
            return f"{value:.{digits}f}{suffix}"
    raise AssertionError("unreachable")


def plain(value: float | None) -> str:
    """Counts that may be fractional (orders per solve): 1, 2.5, 1234, 12.3k."""
    if value is None:
        return NONE
    return f"{value:.3g}" if abs(value) < 999.5 else count(round(value))


def count(value: int | None) -> str:
    """1234, then 12.3k: at most five characters."""
    if value is None:
        return NONE
    return str(value) if abs(value) < 10_000 else _thousands(value)


def share(value: float | None) -> str:
    """A 0..1 share as a percentage: 0.0123 -> 1.2%, 1.0 -> 100%: at most five characters."""
    if value is None:
        return NONE
    percent = value * 100
    return f"{percent:.1f}%" if abs(percent) < 99.95 else f"{percent:.0f}%"


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
