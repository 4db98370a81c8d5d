"""`#latency`: per API route group, requests/s, P50/P95/P99 and the 5xx share over the daemon's
last 60 s, and the P99 over the last 15 minutes; a P99 goes amber near its SLO and red over it."""

from __future__ import annotations

from typing import Any

from tui.model import IDLE, ROUTE_GROUPS, Snapshot
from tui.trends import P99
from tui.widgets import format
from tui.widgets.tables import TREND, Board, Col, Tones, cell, trend

FIGURES = ("rate_per_second", "p50", "p95", "p99")
ERROR_WARN, ERROR_BREACH = 0.0, 0.01  # a 5xx share above these is amber, red


class LatencyTable(Board):
    COLUMNS = (
        Col("group", "route", 7, right=False),
        Col("rps", "req/s", 6),
        Col("p50", "p50", 6),
        Col("p95", "p95", 6),
        Col("p99", "p99", 6),
        Col("err", "5xx", 6),
        Col(TREND, "p99 · 15 min"),
    )

    def __init__(self) -> None:
        super().__init__(id="latency", rows=[(g, g) for g in ROUTE_GROUPS])

    def show(self, snapshot: Snapshot, trends: Any) -> None:
        tones = Tones(self)
        width = self.fill_width()
        for row in snapshot.latency:
            seen = row.latency
            ms = {name: None if seen is None else getattr(seen, name) for name in FIGURES}
            values = {
                "rps": cell(format.num(ms["rate_per_second"]), tones.dim if row.level == IDLE else None),
                "p50": cell(format.num(ms["p50"])),
                "p95": cell(format.num(ms["p95"])),
                "p99": cell(format.num(ms["p99"]), tones.of(row.level)),
                "err": cell(format.share(row.error_rate), _error_style(row.error_rate, tones)),
                TREND: trend(trends.slots(P99[row.group], width), tones, row.slo_ms),
            }
            self.put(row.group, values)


def _error_style(rate: float | None, tones: Tones) -> Any:
    if rate is None or rate <= ERROR_WARN:
        return None
    return tones.breach if rate >= ERROR_BREACH else tones.warn
