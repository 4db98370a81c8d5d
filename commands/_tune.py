"""What `uoom channels weights tune` shows: the candidates side by side (table rows) and the same
numbers as a plot in the terminal (plotext, imported when drawn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COLUMNS = ("candidate", "label", "weights", "per_order", "on_time", "delivered", "trips", "moves", "fees", "books")
HEADERS = {"candidate": "#", "weights": "cost/time/qual/cap", "per_order": "$ per order", "on_time": "on time",
           "trips": "trips", "fees": "fees $"}  # fmt: skip


def table_rows(rows: Sequence[dict[str, Any]], best: int | None) -> list[dict[str, Any]]:
    """The replay's rows as table cells: weights to 2 places, $ to the tenth of a cent, rates in %,
    delivered out of all orders (the rest fell back); the best candidate's number starred."""
    return [
        {
            "candidate": f"{r['candidate']}{' *' if r['candidate'] == best else ''}",
            "label": r["label"],
            "weights": "/".join(f"{v:.2f}" for v in r["weights"].values()),
            "per_order": f"{r['dollars_per_delivered_order']:.3f}",
            "on_time": f"{r['on_time_rate']:.1%}",
            "delivered": f"{r['delivered']}/{r['orders']}",
            "trips": r["trips_formed"],
            "moves": r["moves"],
            "fees": f"{r['fees_paid']:.2f}",
            "books": "ok" if not r["books_faults"] else f"{r['books_faults']} FAULTS",
        }
        for r in rows
    ]


def plot(rows: Sequence[dict[str, Any]], width: int, color: bool) -> str:
    """The trade-off in one chart: each candidate a point (its number, as in the table) at its
    on-time rate (x) and $ per delivered order (y); down and to the right is better."""
    import plotext as plt

    plt.clear_figure()
    xs = [round(100 * r["on_time_rate"], 2) for r in rows]
    ys = [round(r["dollars_per_delivered_order"], 3) for r in rows]
    plt.plotsize(max(min(width, 100), 50), 20)
    plt.theme("clear")  # the terminal's own colours, dark or light
    plt.scatter(xs, ys, marker="dot")
    for r, x, y in zip(rows, xs, ys, strict=True):
        plt.text(f"{r['candidate']}", x, y, alignment="center")
    pad_x, pad_y = max((max(xs) - min(xs)) * 0.15, 0.2), max((max(ys) - min(ys)) * 0.15, 0.05)
    plt.xlim(min(xs) - pad_x, max(xs) + pad_x)
    plt.ylim(min(ys) - pad_y, max(ys) + pad_y)
    plt.title("candidates: $ per delivered order (fees, penalties) against on time")
    plt.xlabel("on time, % of all orders")
    text: str = plt.build()
    plt.clear_figure()
    return text if color else plt.uncolorize(text)


def document(
    source: dict[str, Any],
    policy: str,
    rows: Sequence[dict[str, Any]],
    best: int | None,
    applied: dict[str, Any] | None,
) -> dict[str, Any]:
    """The --json document (docs/cli.md)."""
    return {"source": source, "policy": policy, "candidates": list(rows), "best": best, "applied": applied}
