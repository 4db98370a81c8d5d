"""Trips priced against slot prices: a fast primal answer and a proven lower bound, without search.

Relaxing the channel capacities with a price per slot (a Lagrangian relaxation) leaves independent
groups of orders: those linked by trip options (one restaurant's orders), each with a few ways to
take its options (its configurations, enumerated once: `Relaxation`), and the orders without a trip
option, each alone. For any prices >= 0 the relaxed optimum minus the prices of the free slots is a
proven lower bound; a projected subgradient on the prices (12 numbers at 200 x 12) raises it,
starting from the pure assignment's LP duals (`prices`: shortest paths over the channel nodes, no
LP). The trip options the groups take at the best prices are the proposals. The answer comes from
min-cost flows with a row per proposed pair (`Trips`): with the pairing fixed, one flow solve
places every other order and picks each pair's channel exactly. Round 2 adds the proposals at the
re-solved flow's prices and splits the trips whose orders cost less alone there. If the proven gap
is still above the caller's target, a local search (`_improve`) adds, drops or swaps one trip at a
time, the moves ranked by their reduced cost at the flow's prices, each checked by a flow solve.
Every answer is a feasible plan with its exact objective. Measured on the synthetic day:
bench/reports/optimizer.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

import numpy as np

from uoom.assignment.costs import LARGE, NO_CHANNEL, CostTable
from uoom.assignment.exact import TransportFlow
from uoom.assignment.trip_model import Option

MAX_CONFIGS = 256  # a group with more configurations is relaxed order by order (valid, weaker)
ITERATIONS = 20  # subgradient steps: 10 left 1.5 % on a few instances, 20 at most 0.7 % (synthetic day)
ROUNDS = 2  # proposals at the best prices, then at the re-solved flow's; a third never gained
STEP = 1.0  # the first Polyak step factor
STALL = 3  # steps without a better bound before the step halves
# Local search flow solves at most: it used at most 5 on 1,400 200 x 12 instances of the synthetic day
# (about 1.3 ms each), and a cap of 2 already brought them all within 0.5 % of the optimum (from 99.4 %).
MOVES = 8


def prices(cost: np.ndarray, fallback: np.ndarray, free: np.ndarray, at: np.ndarray) -> np.ndarray:
    """LP-dual slot price of each channel for an optimal choice `at` (NO_CHANNEL: the fallback) of
    rows `cost` (LARGE: no such pair): 0 on a channel with a free slot, else the shortest path from
    the channel to a free slot or the fallback, over moves of one order."""
    n, m = cost.shape
    if n == 0:
        return np.zeros(m)
    placed = at != NO_CHANNEL
    here = np.where(placed, cost[np.arange(n), np.where(placed, at, 0)], fallback)
    moves = np.concatenate([cost, fallback[:, None]], axis=1) - here[:, None]  # order i: its node -> k
    node = np.where(placed, at, m)
    edge = np.full((m + 1, m + 1), float(LARGE))
    order = np.argsort(node, kind="stable")
    starts = np.flatnonzero(np.diff(node[order], prepend=-1))
    edge[node[order][starts]] = np.minimum.reduceat(moves[order], starts)
    held = np.bincount(at[placed], minlength=m)
    p = np.append(np.where(held < free, 0.0, float(fallback[fallback < LARGE].max(initial=0) + 1)), 0.0)
    np.fill_diagonal(edge, 0.0)  # staying put: a price never rises
    settled = np.flatnonzero(p == 0)
    edge[settled] = float(LARGE)
    edge[settled, settled] = 0.0
    for _ in range(m + 1):  # Bellman-Ford towards the price-0 nodes
        better = np.maximum((edge + p).min(axis=1), 0.0)
        if np.array_equal(better, p):
            break
        p = better
    return p[:m]


class Relaxation:
    """The Lagrangian relaxation of one dispatch's capacities, built once and evaluated at many
    prices. Configuration k of a group: trip options `configs[k]` (disjoint, one joiner per open
    trip), the group's other orders alone at their best price-adjusted single (or fallback)."""

    def __init__(self, table: CostTable, extra: Sequence[Option]) -> None:
        dense = table.dense
        n, m = dense.shape
        self.n, self.m = n, m
        fallback = np.array([LARGE if f is None else f for f in table.fallback], dtype=np.float64)
        self.cost = np.concatenate([dense.astype(np.float64), fallback[:, None]], axis=1)
        self.free = np.asarray(table.free, dtype=np.float64)
        fixed: list[float] = []
        slot_at: tuple[list[int], list[int], list[float]] = ([], [], [])  # config, channel, share
        alone_at: tuple[list[int], list[int]] = ([], [])  # config, an order it leaves alone
        group_of: list[int] = []
        self.configs: list[tuple[Option, ...] | None] = []  # None: a relaxed share, not a proposal
        self.single = np.ones(n, dtype=bool)
        groups = _groups(n, extra)
        options_of: list[list[Option]] = [[] for _ in groups]
        where = {i: g for g, members in enumerate(groups) for i in members}
        for o in extra:
            options_of[where[o.orders[0]]].append(o)
        count = 0
        for members, options in zip(groups, options_of, strict=True):
            self.single[members] = False
            configs = _configurations(members, options)
            parts = [(members, configs)] if configs is not None else _shares(members, options)
            for part, chosen in parts:
                for config, weight in chosen:
                    k = len(fixed)
                    covered: set[int] = set()
                    price = 0.0
                    for o in config:
                        price += o.cost * weight
                        if o.trip < 0:
                            slot_at[0].append(k)
                            slot_at[1].append(o.channel)
                            slot_at[2].append(weight)
                        covered.update(o.orders)
                    for i in part:
                        if i not in covered:
                            alone_at[0].append(k)
                            alone_at[1].append(i)
                    fixed.append(price)
                    group_of.append(count)
                    self.configs.append(config if weight == 1.0 else None)
                count += 1
        size = len(fixed)
        self.fixed = np.array(fixed)
        self.slots = np.zeros((size, m))
        np.add.at(self.slots, (slot_at[0], slot_at[1]), slot_at[2])
        self.alone = np.zeros((size, n))
        self.alone[alone_at[0], alone_at[1]] = 1.0
        self.group_of = np.array(group_of, dtype=np.int64)
        self.starts = np.flatnonzero(np.diff(self.group_of, prepend=-1)) if size else np.zeros(0, dtype=np.int64)
        self.backwards = size - np.arange(size)  # first index of a group's minimum by a max-reduction
        self.extended = np.zeros(m + 1)

    def value(self, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(the relaxed optimum at prices `p` minus the free slots' prices: a lower bound, the
        configurations the groups take, slots used per channel: a subgradient + the free slots)."""
        self.extended[: self.m] = p
        adjusted = self.cost + self.extended
        at = adjusted.argmin(axis=1)
        best = adjusted[np.arange(self.n), at]
        total = float(best[self.single].sum() - p @ self.free)
        cover = self.single.astype(np.float64)
        usage = np.zeros(self.m)
        chosen = np.zeros(0, dtype=np.int64)
        if len(self.fixed):
            values = self.fixed + self.slots @ p + self.alone @ best
            low = np.minimum.reduceat(values, self.starts)
            total += float(low.sum())
            marks = np.where(values <= low[self.group_of], self.backwards, 0)
            chosen = len(self.fixed) - np.maximum.reduceat(marks, self.starts)
            cover += self.alone[chosen].sum(axis=0)
            usage += self.slots[chosen].sum(axis=0)
        usage += np.bincount(at, weights=cover, minlength=self.m + 1)[: self.m]
        return total, chosen, usage

    def options(self, chosen: np.ndarray) -> list[Option]:
        """The trip options of configurations `chosen` (a value()'s), as proposals."""
        out: list[Option] = []
        for k in chosen.tolist():
            config = self.configs[k]
            if config:
                out += config
        return out

    def maximize(
        self, p: np.ndarray, upper: float, until: float = float("inf")
    ) -> tuple[float, np.ndarray, list[Option]]:
        """(best bound, its prices, the options taken there): projected subgradient from `p`, with
        Polyak steps towards `upper` (the best objective known), stopping at perf_counter() `until`."""
        bound, chosen, usage = self.value(p)
        best = (bound, p, chosen)
        step, stall = STEP, 0
        for _ in range(ITERATIONS):
            g = usage - self.free
            g[(p <= 0) & (g < 0)] = 0.0
            norm = float(g @ g)
            if norm == 0 or upper - best[0] <= 0.5 or perf_counter() > until:
                break
            p = np.maximum(p + step * (upper - bound) / norm * g, 0.0)
            bound, chosen, usage = self.value(p)
            if bound > best[0] + 0.5:
                best, stall = (bound, p, chosen), 0
            else:
                stall += 1
                if stall >= STALL:
                    step, stall = step / 2, 0
        return best[0], best[1], self.options(best[2])


def _groups(n: int, extra: Sequence[Option]) -> list[list[int]]:
    """Orders linked by a trip option (a pair, or two joins of one open trip), as sorted lists."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_trip: dict[int, int] = {}
    for o in extra:
        first = root(o.orders[0])
        for other in (*o.orders[1:], by_trip.setdefault(o.trip, first) if o.trip >= 0 else first):
            parent[root(other)] = first
            first = root(first)
    out: dict[int, list[int]] = {}
    for i in sorted(parent):
        out.setdefault(root(i), []).append(i)
    return list(out.values())


def _configurations(members: list[int], options: list[Option]) -> list[tuple[tuple[Option, ...], float]] | None:
    """Every way to take disjoint options of a group (one joiner per open trip), or None if more
    than MAX_CONFIGS."""
    if len(members) == 1 or all(len(o.orders) == len(members) for o in options):
        return [((), 1.0), *(((o,), 1.0) for o in options)]  # one order, or one pair: any one option
    position = {i: k for k, i in enumerate(members)}
    by_first: dict[int, list[Option]] = {}
    for o in options:
        by_first.setdefault(min(position[i] for i in o.orders), []).append(o)
    out: list[tuple[tuple[Option, ...], float]] = []

    def walk(k: int, done: int, trips: frozenset[int], chosen: tuple[Option, ...]) -> bool:
        while k < len(members) and done >> k & 1:
            k += 1
        if k == len(members):
            out.append((chosen, 1.0))
            return len(out) <= MAX_CONFIGS
        if not walk(k + 1, done | 1 << k, trips, chosen):
            return False
        for o in by_first.get(k, []):
            bits = sum(1 << position[i] for i in o.orders)
            if bits & done or o.trip in trips:
                continue
            if not walk(k + 1, done | bits, trips | {o.trip} if o.trip >= 0 else trips, (*chosen, o)):
                return False
        return True

    return out if walk(0, 0, frozenset(), ()) else None


def _shares(
    members: list[int], options: list[Option]
) -> list[tuple[list[int], list[tuple[tuple[Option, ...], float]]]]:
    """A large group relaxed order by order: each order alone, or its share of one option (a pair's
    cost and slot halved). Any true configuration costs at least as much: a valid, weaker bound."""
    out = []
    for i in members:
        shares = [((o,), 1.0 / len(o.orders)) for o in options if i in o.orders]
        out.append(([i], [((), 1.0), *shares]))
    return out


Best = tuple[list[Option], list[int], int, np.ndarray]  # Trips.solve(): taken, choice, objective, slot prices


class Trips:
    """The flow of one dispatch with trips as rows: a row per order, and a row per pair of orders
    that some pair option links (its options: the pair's channels, one slot each; its fallback: both
    orders' fallbacks). With a set of pairs (which orders ride together) and joins fixed, one flow
    solve places the other orders and chooses each pair's channel, exactly for that pairing."""

    def __init__(self, table: CostTable, extra: Sequence[Option]) -> None:
        dense = table.dense
        self.n, m = dense.shape
        self.row_of: dict[tuple[int, ...], int] = {}
        for o in extra:
            if o.trip < 0:
                self.row_of.setdefault(o.orders, self.n + len(self.row_of))
        rows = np.full((len(self.row_of), m), LARGE, dtype=np.int64)
        self.option: dict[tuple[int, int], Option] = {}
        for o in extra:
            if o.trip < 0:
                r = self.row_of[o.orders]
                if o.cost < rows[r - self.n, o.channel]:
                    rows[r - self.n, o.channel] = o.cost
                    self.option[(r, o.channel)] = o
        both = [(table.fallback[a] or 0) + (table.fallback[b] or 0) for a, b in self.row_of]
        fallback: list[int | None] = [*table.fallback, *both]
        self.fallback = np.array([LARGE if f is None else f for f in fallback], dtype=np.int64)
        self.dense = np.concatenate([dense, rows])
        self.free = np.asarray(table.free)
        self.joins = [o for o in extra if o.trip >= 0]
        self.flow = TransportFlow(CostTable(None, fallback, list(table.free), [], self.dense))

    def solve(self, joins: Sequence[Option], pairs: Sequence[tuple[int, ...]]) -> Best:
        """(options taken, channel per order (NO_CHANNEL: on a trip, or the fallback), objective, the
        flow's slot prices) with `joins` taken and the orders of `pairs` riding together."""
        active = np.zeros(len(self.dense), dtype=bool)
        active[: self.n] = True
        for o in joins:
            active[list(o.orders)] = False
        for pair in pairs:
            active[list(pair)] = False
            active[self.row_of[pair]] = True
        choice = self.flow.solve_array(np.flatnonzero(~active))
        placed = choice != NO_CHANNEL
        row_cost = np.where(placed, self.dense[np.arange(len(choice)), np.where(placed, choice, 0)], self.fallback)
        total = int(row_cost[active].sum()) + sum(o.cost for o in joins)
        taken = list(joins)
        for pair in pairs:
            j = int(choice[self.row_of[pair]])
            if j != NO_CHANNEL:
                taken.append(self.option[(self.row_of[pair], j)])
        p = prices(self.dense[active], self.fallback[active], self.free, choice[active])
        return taken, choice[: self.n].tolist(), total, p


def priced(
    table: CostTable, extra: Sequence[Option], until: float = float("inf"), target: float = 0.0
) -> tuple[list[Option], list[int], int, int]:
    """(trip options taken, channel per order (NO_CHANNEL for the orders on a taken trip option and
    for the fallen-back ones), objective, proven lower bound), in milli-points. `until`: a
    perf_counter() time after which no further improvement starts (the best answer so far stands).
    `target`: the local search runs while the proven gap, (objective - bound) / objective, is above it."""
    trips = Trips(table, extra)
    began = perf_counter()
    best = trips.solve([], [])
    solve_s = perf_counter() - began
    # Round 1 (most of the gain) starts if `until` has not passed; the subgradient stops two solves
    # before it, and round 2 starts only if two solves still fit.
    relaxation = Relaxation(table, extra)
    bound, _, proposed = relaxation.maximize(best[3], best[2], until - 2 * solve_s)
    joins: list[Option] = []
    pairs: list[tuple[int, ...]] = []
    for round_ in range(ROUNDS):
        changed = False
        if round_ > 0:
            raised, chosen, _ = relaxation.value(best[3])
            bound = max(bound, raised)
            proposed = relaxation.options(chosen)
            kept = _worth_keeping(relaxation, best)
            changed = len(kept) < len(best[0])
            joins = [o for o in kept if o.trip >= 0]
            pairs = [o.orders for o in kept if o.trip < 0]
        changed |= _add(proposed, joins, pairs)
        if perf_counter() + (2 * solve_s if round_ else 0.0) > until or not changed:
            break
        found = trips.solve(joins, pairs)
        if found[2] < best[2]:
            best = found
    bound = max(bound, relaxation.value(best[3])[0])
    if best[2] - bound > target * best[2]:  # the bound says the answer may be off: worth a few solves
        best, bound = _improve(trips, relaxation, best, bound, target, until - solve_s)
    proven = min(int(np.ceil(bound - 1e-6)), best[2])
    return best[0], best[1], best[2], proven


def _add(proposed: Sequence[Option], joins: list[Option], pairs: list[tuple[int, ...]]) -> bool:
    """Add the proposals that fit (disjoint orders, one joiner per open trip), cheapest first;
    False if none did."""
    busy = {i for o in joins for i in o.orders} | {i for pair in pairs for i in pair}
    riders = {o.trip for o in joins}
    added = False
    for o in sorted(proposed, key=lambda o: o.cost):
        if busy.intersection(o.orders) or o.trip in riders:
            continue
        busy.update(o.orders)
        if o.trip >= 0:
            joins.append(o)
            riders.add(o.trip)
        else:
            pairs.append(o.orders)
        added = True
    return added


def _worth_keeping(relaxation: Relaxation, best: Best) -> list[Option]:
    """The taken trips whose orders would not cost less alone at the flow's prices (a pair's slot
    freed)."""
    taken, _, _, p = best
    alone = (relaxation.cost + np.append(p, 0.0)).min(axis=1)
    return [o for o in taken if o.cost + (p[o.channel] if o.trip < 0 else 0.0) <= alone[list(o.orders)].sum()]


Move = tuple[frozenset[Option], Option | tuple[int, ...] | None]  # (taken options dropped, a join or pair added)


def _improve(
    trips: Trips, relaxation: Relaxation, best: Best, bound: float, target: float, until: float
) -> tuple[Best, float]:
    """(best answer, bound) after a local search from `best`: one trip added, dropped or swapped
    for the taken ones it overlaps at a time, the moves ranked by their reduced cost at the flow's
    slot prices, each checked by a flow solve (exact for its pairing), the first better one taken;
    until no move looks better, MOVES solves, the proven gap within `target` or perf_counter()
    `until`. Adding every proposal at once (the rounds) can fail where one at a time gains: a
    scarce bundling channel with more proposed pairs than slots."""
    tried: set[Move] = set()  # kept after a gain: retrying gained nothing (1,400 instances), up to 11 solves, not 5
    solves = 0
    while True:
        for move in _moves(trips, relaxation, best):
            if move in tried:
                continue
            if solves == MOVES or perf_counter() > until:
                return best, bound
            tried.add(move)
            solves += 1
            dropped, added = move
            joins = [o for o in best[0] if o.trip >= 0 and o not in dropped]
            pairs = [o.orders for o in best[0] if o.trip < 0 and o not in dropped]
            if isinstance(added, Option):
                joins.append(added)
            elif added is not None:
                pairs.append(added)
            found = trips.solve(joins, pairs)
            if found[2] < best[2]:
                best = found
                bound = max(bound, relaxation.value(best[3])[0])
                if best[2] - bound <= target * best[2]:
                    return best, bound
                break
        else:
            return best, bound


def _moves(trips: Trips, relaxation: Relaxation, best: Best) -> list[Move]:
    """The moves from `best` whose reduced cost at its slot prices is negative, most negative
    first: drop a taken trip (its orders alone), add a pair or a join (dropping the taken trips that
    share an order or the open trip). An order alone costs its cheapest price-adjusted single or
    its fallback; a taken pair its cost and its slot's price."""
    taken, _, _, p = best
    alone = (relaxation.cost + np.append(p, 0.0)).min(axis=1)
    owner = {i: o for o in taken for i in o.orders}
    rider = {o.trip: o for o in taken if o.trip >= 0}

    def estimate(dropped: frozenset[Option], orders: tuple[int, ...], cost: float) -> float:
        freed = {i for o in dropped for i in o.orders}
        held = sum(o.cost + (p[o.channel] if o.trip < 0 else 0.0) for o in dropped)
        return cost - held + alone[list(freed.difference(orders))].sum() - alone[list(set(orders) - freed)].sum()

    moves: list[tuple[float, int, Move]] = []
    for o in taken:
        moves.append((estimate(frozenset((o,)), (), 0.0), len(moves), (frozenset((o,)), None)))
    paired = {o.orders for o in taken if o.trip < 0}
    cheapest = (trips.dense[trips.n :] + p).min(axis=1)  # a pair row on its best channel at these prices
    for pair, r in trips.row_of.items():
        if pair not in paired:
            dropped = frozenset(owner[i] for i in pair if i in owner)
            moves.append((estimate(dropped, pair, float(cheapest[r - trips.n])), len(moves), (dropped, pair)))
    for o in trips.joins:
        if o not in rider.values():
            shared = {owner[i] for i in o.orders if i in owner} | ({rider[o.trip]} if o.trip in rider else set())
            moves.append((estimate(frozenset(shared), o.orders, float(o.cost)), len(moves), (frozenset(shared), o)))
    return [move for value, _, move in sorted(moves) if value < 0]
