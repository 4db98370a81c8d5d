"""`#optimizer`: the solver's P99, orders per solve, how solves ended, the API's fallback share
and breaker, the rolling re-optimisation's moves per minute (under dispatch_policy in-time: the
held orders its rounds place per minute, and the due ones waiting for a free channel), and the
two-order trips planned."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from tui.model import OptimizerView, Snapshot
from tui.widgets import format
from tui.widgets.tables import Board, Col, Tones, cell

ROWS = (
    ("solve", "solve p99"),
    ("batch", "batch"),  # orders per solve, p50 / p99
    ("mix", "opt/fea/fb"),  # share of solves OPTIMAL / FEASIBLE, of orders FALLBACK
    ("fallback", "fallback"),
    ("breaker", "breaker"),
    ("reassign", "reassign"),
    ("trips", "trips"),  # pairs formed / joins, and the share of orders riding two to a courier
)
MIX = ("OPTIMAL", "FEASIBLE", "FALLBACK")
FALLBACK_WARN = 0.05
VALUE_WIDTH = 18  # on a wide panel the values stay near their names


class OptimizerTable(Board):
    COLUMNS = (Col("name", "", 11, right=False), Col("value", ""))

    def __init__(self) -> None:
        super().__init__(id="optimizer", rows=ROWS)
        self.show_header = False

    def show(self, snapshot: Snapshot) -> None:
        tones = Tones(self)
        room = self.fill_width(most=VALUE_WIDTH)  # a narrow panel: the shorter forms, never a cut number
        opt = snapshot.optimizer
        fallback_style = tones.warn if (opt.api_fallback_rate or 0) >= FALLBACK_WARN else None
        breaker_style = {"opened": tones.breach, "half-opened": tones.warn}.get(opt.breaker or "")
        values = {
            "solve": cell(format.num(opt.solve_p99_ms, "ms")),
            "batch": cell(batch(opt, room)),
            "mix": cell(mix(opt, room)),
            "fallback": cell(format.share(opt.api_fallback_rate), fallback_style),
            "breaker": cell(opt.breaker or format.NONE, breaker_style),
            "reassign": rounds(opt, tones.warn),
            "trips": cell(trips(opt, room)),
        }
        for key, value in values.items():
            self.put(key, {"value": value})


def rounds(opt: OptimizerView, warn: Style) -> Text:
    """Moves per minute; under in-time 'held 95/min' (placed by the rounds), '+ 3 due' in the
    warning tone while due orders wait for a channel with room."""
    if opt.dispatch_policy != "in-time":
        return cell(format.num(opt.reassignments_per_minute, "/min"))
    text = f"held {format.num(opt.held_per_minute, '/min')}"
    waiting = opt.held_due_unplaced or 0
    return cell(f"{text} + {waiting} due" if waiting else text, warn if waiting else None)


def mix(opt: OptimizerView, room: int = 0) -> str:
    """'97/2/1 %': OPTIMAL/FEASIBLE/FALLBACK, then '+4 other' for any other status (UNKNOWN, ...);
    '97/2/1% +4' where `room` is short."""
    if not opt.status_mix:
        return format.NONE
    shares = "/".join(f"{opt.status_mix.get(name, 0.0) * 100:.0f}" for name in MIX)
    other = sum(v for k, v in opt.status_mix.items() if k not in MIX)
    text = f"{shares} %" + (f" +{other * 100:.0f} other" if other >= 0.005 else "")
    if not room or len(text) <= room:
        return text
    return f"{shares}%" + (f" +{other * 100:.0f}" if other >= 0.005 else "")


def trips(opt: OptimizerView, room: int = 0) -> str:
    """'3 pairs 41 joins 12%': new pairs, joins of open trips, the share of orders riding two to a
    courier; '3p 41j 12%', then '3p 41j' where `room` is short."""
    if opt.trip_pairs is None and opt.trip_joins is None:
        return format.NONE
    pairs, joins, share = format.count(opt.trip_pairs), format.count(opt.trip_joins), format.share(opt.riding_two_share)
    for text in (f"{pairs} pairs {joins} joins {share}", f"{pairs}p {joins}j {share}"):
        if not room or len(text) <= room:
            return text
    return f"{pairs}p {joins}j"


def batch(opt: OptimizerView, room: int = 0) -> str:
    """Orders per solve, '1 / 4 orders' (P50 / P99); '1/4' where `room` is short."""
    if opt.batch_orders_p50 is None and opt.batch_orders_p99 is None:
        return format.NONE
    p50, p99 = format.plain(opt.batch_orders_p50), format.plain(opt.batch_orders_p99)
    for text in (f"{p50} / {p99} orders", f"{p50} / {p99}"):
        if not room or len(text) <= room:
            return text
    return f"{p50}/{p99}"
