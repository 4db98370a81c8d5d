"""The optimizer's numbers, through the daemon kit: solve time (build + solve, wall clock),
batch sizes, statuses, the fallback share, the orders given no solver time (and why), and what the
re-optimizer and the load tracker did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daemons.kit.metrics import DaemonMetrics, by_label, total
from uoom.assignment import Result

if TYPE_CHECKING:
    from daemons.optimizer.load_tracker import LoadTracker
    from daemons.optimizer.reoptimizer import Reoptimizer
    from daemons.optimizer.trips import TripCounts

SOLVE_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 250)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
SHED_REASONS = ("full", "gone", "late")
TRIP_KINDS = ("pair", "join", "single")  # new two-order trips, joins of open trips, singles on bundling channels


class OptimizerMetrics:
    def __init__(self) -> None:
        m = self.kit = DaemonMetrics("optimizer")
        self.registry = m.registry
        solve = m.histogram("optimizer_solve_ms", "Build + solve wall clock, ms", SOLVE_BUCKETS)
        self.solve = m.latency("solve", solve, unit_per_ms=1.0)
        self.batch = m.histogram("optimizer_batch_orders", "Orders per solve", BATCH_BUCKETS)
        self.batch_sizes = m.window()
        self.status = m.counter("optimizer_solves", "Solves by status", ("status",))
        self.assigned = m.counter("optimizer_orders", "Orders answered by a solve (a channel or the fallback)")
        self.fallbacks = m.counter("optimizer_fallback_orders", "Orders left to the fallback")
        self.shed_orders = m.counter("optimizer_shed_orders", "Orders given no solver time: queue full (503), "
                                     "caller gone, deadline passed while waiting (greedy)", ("reason",))  # fmt: skip
        for reason in SHED_REASONS:
            self.shed_orders.labels(reason)
        self.trip_counts = m.counter("optimizer_trips", "Trips planned on bundling channels: new pairs (one per "
                                     "pair), joins of open trips, singles", ("kind",))  # fmt: skip
        for kind in TRIP_KINDS:
            self.trip_counts.labels(kind)
        m.gauge("optimizer_fallback_ratio", "Share of assigned orders left to the fallback",
                reads=lambda: self.fallback_rate() or 0.0)  # fmt: skip
        self._rounds: Reoptimizer | None = None
        self._loads: LoadTracker | None = None

    def record(self, result: Result, requests: int) -> None:
        """One solve (of `requests` merged requests)."""
        self.solve.observe_ms(result.solve_ms)
        size = len(result.assignments)
        self.batch.observe(size)
        self.batch_sizes.add(size)
        self.status.labels(result.status).inc()
        self.assigned.inc(size)
        self.fallbacks.inc(sum(1 for a in result.assignments if a.fallback))

    def trips(self, counts: TripCounts) -> None:
        """What one solve with trips planned (the order's transaction may still refuse a join)."""
        for kind, n in zip(TRIP_KINDS, (counts.pairs, counts.joins, counts.singles), strict=True):
            if n:
                self.trip_counts.labels(kind).inc(n)

    def shed(self, reason: str, orders: int) -> None:
        """Orders of a request refused (queue full), dropped (caller gone), or answered by the
        greedy rule without the solver (its deadline passed while it waited)."""
        self.shed_orders.labels(reason).inc(orders)

    def watch(self, reoptimizer: Reoptimizer, load_tracker: LoadTracker) -> None:
        """Expose the re-optimizer's and the load tracker's own counts (once they exist)."""
        self._rounds, self._loads = reoptimizer, load_tracker
        self.kit.counter_reading("optimizer_reassignments", "Orders moved by rolling re-optimization",
                                 lambda: reoptimizer.reassigned)  # fmt: skip
        self.kit.counter_reading("optimizer_held_assigned", "Held orders given their channel (dispatch_policy in-time)",
                                 lambda: reoptimizer.released)  # fmt: skip
        self.kit.counter_reading("optimizer_held_shared", "Held orders given a two-order trip (in-time)",
                                 lambda: reoptimizer.released_shared)  # fmt: skip
        self.kit.counter_reading("optimizer_reoptimization_rounds", "Re-optimization (or in-time) rounds",
                                 lambda: reoptimizer.rounds)  # fmt: skip
        self.kit.counter_reading("optimizer_reassignment_fees_dollars", "Fees the moves paid their old channels",
                                 lambda: float(reoptimizer.fees_paid))  # fmt: skip
        self.kit.counter_reading("optimizer_load_events", "Order events applied to the channels' load",
                                 lambda: load_tracker.applied)  # fmt: skip

    def fallback_rate(self) -> float | None:
        assigned = total(self.assigned)
        return total(self.fallbacks) / assigned if assigned else None

    def section(self) -> dict[str, Any]:
        """The `optimizer` section of the metrics JSON (docs/metrics.md)."""
        rounds, loads = self._rounds, self._loads
        return {
            "batchOrders": {"total": total(self.batch), **self.batch_sizes.summary()},
            "statuses": by_label(self.status),
            "assigned": total(self.assigned),
            "fallbacks": total(self.fallbacks),
            "fallbackRate": self.fallback_rate(),
            "shed": by_label(self.shed_orders),
            "trips": {f"{kind}s": n for kind, n in by_label(self.trip_counts).items()},
            "dispatchPolicy": rounds.settings.dispatch_policy if rounds else None,
            "reassignments": rounds.reassigned if rounds else 0,
            "reassignmentFees": float(rounds.fees_paid) if rounds else 0.0,
            "reserveSlots": rounds.last_reserve if rounds else None,
            "heldAssigned": rounds.released if rounds else 0,
            "heldShared": rounds.released_shared if rounds else 0,
            "heldDueUnplaced": rounds.due_unplaced if rounds else None,
            "reoptimizationRounds": rounds.rounds if rounds else 0,
            "lastRoundMs": rounds.last_round_ms if rounds else None,
            "loadEventsApplied": loads.applied if loads else 0,
        }
