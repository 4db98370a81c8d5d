"""Trips priced against the flow: a fast primal answer and a proven lower bound, without search.

The pure assignment's min-cost flow is optimal, so it has LP duals: a price p_j >= 0 per channel
slot. They come from shortest paths over the few channel nodes (an order on channel a that could
take channel k is an edge a -> k of weight c_ik - c_ia; a channel with a free slot costs 0), so no
LP is solved. With slots priced instead of limited (a Lagrangian relaxation of the capacities),
orders fall into independent groups, those linked by trip options (one restaurant's orders), each
solved exactly by enumeration: that is a proven lower bound whatever the prices, and the trip
options the groups take are proposals. The proposals are fixed (disjoint, within slots), the flow
re-solves the other orders, and that repeats on what is left while it gains (a Lagrangian
heuristic). Measured on the synthetic day: the answer is within 0.5 % of the exact optimum almost
always; the bound at the flow's prices is loose (up to ~6 % below the optimum): see
bench/reports/optimizer.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from uoom.assignment.costs import NO_CHANNEL, CostTable
from uoom.assignment.exact import TransportFlow
from uoom.assignment.trip_model import Option

ROUNDS = 2  # a third round never gained on the synthetic day's 200 x 12 instances
MAX_GROUP = 12  # orders of one restaurant solved exactly in the bound (2^12 states at most)
LARGE = 1 << 40


def prices(table: CostTable, choice: Sequence[int]) -> list[int]:
    """LP-dual slot price of each channel for an optimal `choice` (0 on a channel with a free slot)."""
    m = len(table.free)
    zero = m  # the fallback node: price 0
    held = [0] * m
    inf = LARGE
    edge = [[inf] * (m + 1) for _ in range(m + 1)]  # edge[a][k]: cheapest move of an order a -> k
    for row, fallback, a in zip(table.options, table.fallback, choice, strict=True):
        if a == NO_CHANNEL:
            here, cost_here = zero, fallback or 0
        else:
            held[a] += 1
            here, cost_here = a, 0
            for k, c in row:
                if k == a:
                    cost_here = c
                    break
            if fallback is not None and fallback - cost_here < edge[here][zero]:
                edge[here][zero] = fallback - cost_here
        moves = edge[here]
        for k, c in row:
            if k != a and c - cost_here < moves[k]:
                moves[k] = c - cost_here
    cap = max((f for f in table.fallback if f is not None), default=0) + 1
    p = [0 if held[j] < table.free[j] else cap for j in range(m)] + [0]
    arcs = [(a, k, w) for a in range(m + 1) for k, w in enumerate(edge[a]) if w < inf and a != k]
    for _ in range(m + 1):  # Bellman-Ford towards the price-0 nodes
        changed = False
        for a, k, w in arcs:
            if p[a] > 0 and p[k] + w < p[a]:
                p[a] = max(p[k] + w, 0)
                changed = True
        if not changed:
            break
    return p[:m]


def lagrangian_bound(
    table: CostTable,
    price: Sequence[int],
    extra: Sequence[Option],
    free: Sequence[int] | None = None,
    skip: set[int] | frozenset[int] = frozenset(),
) -> tuple[int, list[Option], list[int]]:
    """A lower bound on the trips model, valid for any prices >= 0: slots cost their price instead
    of being limited, which leaves independent groups of orders (those linked by trip options: one
    restaurant's orders), each solved exactly. Also the trip options those groups take and the
    slots the relaxed answer uses per channel (a subgradient). `free` and `skip` (orders already
    placed, left out) bound what is left of the problem instead."""
    alone = []
    where = []
    for row, fallback in zip(table.options, table.fallback, strict=True):
        best, at = (fallback, NO_CHANNEL) if fallback is not None else (LARGE, NO_CHANNEL)
        for j, c in row:  # the hot loop of the bound: plain comparisons, no min()
            if c + price[j] < best:
                best, at = c + price[j], j
        alone.append(best)
        where.append(at)
    groups = _groups(len(alone), extra)
    group_of = {i: g for g, members in enumerate(groups) for i in members}
    mine: list[list[tuple[Option, int]]] = [[] for _ in groups]
    for o in extra:
        mine[group_of[o.orders[0]]].append((o, o.cost + (price[o.channel] if o.trip < 0 else 0)))
    total = -sum(p * f for p, f in zip(price, table.free if free is None else free, strict=True))
    linked = set(skip)
    taken: list[Option] = []
    for members, options in zip(groups, mine, strict=True):
        linked.update(members)
        cost, chosen = _best_partition(members, options, alone)
        total += cost
        taken += chosen
    total += sum(a for i, a in enumerate(alone) if i not in linked)  # `skip` is in `linked`
    usage = [0] * len(price)
    covered = set(skip)
    for o in taken:
        covered.update(o.orders)
        if o.trip < 0:
            usage[o.channel] += 1
    for i, j in enumerate(where):
        if j != NO_CHANNEL and i not in covered:
            usage[j] += 1
    return total, taken, usage


def _groups(n: int, extra: Sequence[Option]) -> list[list[int]]:
    """Orders linked by a trip option (a pair, or two joins of one open trip), as sorted lists."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_trip: dict[int, int] = {}
    for o in extra:
        first = o.orders[0]
        for other in (*o.orders[1:], by_trip.setdefault(o.trip, first) if o.trip >= 0 else first):
            parent[root(other)] = root(first)
    out: dict[int, list[int]] = {}
    for o in extra:
        for i in o.orders:
            out.setdefault(root(i), [])
    for i in range(n):
        if root(i) in out:
            out[root(i)].append(i)
    return [sorted(set(v)) for v in out.values()]


def _best_partition(
    members: list[int], options: list[tuple[Option, int]], alone: Sequence[int]
) -> tuple[int, list[Option]]:
    """Cheapest way for a group's orders to each take one option (alone, a pair, a join; one joiner
    per trip), exactly for small groups; a weaker but valid per-order relaxation for large ones."""
    if len(members) > MAX_GROUP:
        best = {i: alone[i] for i in members}
        for o, c in options:
            for i in o.orders:
                best[i] = min(best[i], c // len(o.orders))  # a pair's cost, halved per order: a lower bound
        return sum(best.values()), []
    position = {i: k for k, i in enumerate(members)}
    by_first: dict[int, list[tuple[Option, int]]] = {}
    for o, c in options:
        key = min(position[i] for i in o.orders)
        by_first.setdefault(key, []).append((o, c))
    memo: dict[tuple[int, frozenset[int]], tuple[int, tuple[Option, ...]]] = {}

    def solve(done: int, trips: frozenset[int]) -> tuple[int, tuple[Option, ...]]:
        if done == (1 << len(members)) - 1:
            return 0, ()
        key = (done, trips)
        if key in memo:
            return memo[key]
        k = next(k for k in range(len(members)) if not done >> k & 1)
        cost, chosen = solve(done | 1 << k, trips)
        best = (cost + alone[members[k]], chosen)
        for o, c in by_first.get(k, []):
            bits = sum(1 << position[i] for i in o.orders)
            if bits & done or o.trip in trips:
                continue
            cost, chosen = solve(done | bits, trips | {o.trip} if o.trip >= 0 else trips)
            if cost + c < best[0]:
                best = (cost + c, (o, *chosen))
        memo[key] = best
        return best

    cost, chosen = solve(0, frozenset())
    return cost, list(chosen)


def priced(table: CostTable, extra: Sequence[Option]) -> tuple[list[Option], list[int], int, int]:
    """(trip options taken, channel per order (NO_CHANNEL for the orders on a taken trip option and
    for the fallen-back ones), objective, proven lower bound), in milli-points."""
    n = len(table.options)
    taken: list[Option] = []
    flow = TransportFlow(table)
    choice = flow.solve()
    best = (list(taken), list(choice), _total(table, taken, choice))
    bound, proposed, _ = lagrangian_bound(table, prices(table, choice), extra)
    for round_ in range(ROUNDS):
        busy = {i for o in taken for i in o.orders}
        trips = {o.trip for o in taken if o.trip >= 0}
        slots = list(table.free)
        for o in taken:
            if o.trip < 0:
                slots[o.channel] -= 1
        added = False
        for o in proposed:
            if busy.intersection(o.orders) or o.trip in trips or (o.trip < 0 and slots[o.channel] <= 0):
                continue
            taken.append(o)
            busy.update(o.orders)
            if o.trip >= 0:
                trips.add(o.trip)
            else:
                slots[o.channel] -= 1
            added = True
        if not added:
            break
        choice = flow.solve(busy, slots)
        total = _total(table, taken, choice)
        if total < best[2]:
            best = (list(taken), list(choice), total)
        if round_ == ROUNDS - 1:
            break  # no round left to use new proposals
        rest = [i for i in range(n) if i not in busy]
        sub = CostTable([table.options[i] for i in rest], [table.fallback[i] for i in rest], slots, [])
        sub_choice = [choice[i] for i in rest]
        sub_price = prices(sub, sub_choice)
        free_extra = [o for o in extra if not busy.intersection(o.orders) and o.trip not in trips]
        proposed = lagrangian_bound(table, sub_price, free_extra, slots, busy)[1]
    return best[0], best[1], best[2], min(bound, best[2])


def _total(table: CostTable, taken: Sequence[Option], choice: Sequence[int]) -> int:
    busy = {i for o in taken for i in o.orders}
    total = sum(o.cost for o in taken)
    for i, j in enumerate(choice):
        if i in busy:
            continue
        total += (table.fallback[i] or 0) if j == NO_CHANNEL else next(c for k, c in table.options[i] if k == j)
    return total
