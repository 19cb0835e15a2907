"""The backtest's second stage: orders sent after their latency, filled against the book as it
stood when they reached Kalshi.

One order per decision at or above the threshold: buy ``size`` contracts of the decision's
side, limit the ask it saw (an immediate-or-cancel taker order). It reaches Kalshi after its
decision and order latencies; there it walks the displayed depth of that moment (the best
`DEPTH` levels), best price first, down to its limit, in whole contracts — minus what earlier
simulated orders already took at each level: a level's consumption is remembered until the
book changes at that level (NautilusTrader's ``liquidity_consumption``), so no two orders fill
the same displayed size. No fill when the market has no book, its book is invalid (gap,
disconnect, awaiting its snapshot), crossed, or stale (its subscription silent for more than
``max_book_age_s``), or the market has closed. Each level taken is one fill, charged the
series' taker fee (`FeeSchedule.fee_e4`, the rounding of its date) at the arrival time.

`simulate` does this for all orders at once with numpy: each (order, level) pair's fill is
``min(need, max(0, shown − what earlier orders asked of the level))`` (taking in arrival order
makes the earlier orders' fills sum to ``min(shown, their asks)``), and an order's need at a
level is its size minus its fills at better levels; iterating those two to their fixed point
gives exactly the sequential result, which `simulate_sequential` computes order by order (the
reference the tests and the bench hold it to).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from arbkit.analysis.decisions import NO, ONE_E4, YES, Prepared
from arbkit.core.fixed import KALSHI_QTY_SCALE
from arbkit.strategy.fees import SUBPENNY_FROM_NS, Role
from arbkit.strategy.signals import DEFAULT_FEES

I64 = npt.NDArray[np.int64]
SECOND_NS = 10**9
MAX_ROUNDS = 64
"""Fixed-point rounds before `simulate` hands a setting to `simulate_sequential`."""


class Miss(IntEnum):
    """Why an order filled nothing (`FILLED` when it filled something)."""

    FILLED = 0
    NO_BOOK = 1
    BOOK_INVALID = 2
    BOOK_CROSSED = 3
    BOOK_STALE = 4
    MARKET_CLOSED = 5
    NO_LIQUIDITY = 6


@dataclass
class Orders:
    """One setting's orders, in arrival order, and what each filled."""

    index: I64
    """Row of each order's decision in `Prepared.decisions`."""
    decision_ns: I64
    order_ns: I64
    arrival_ns: I64
    filled: I64
    """Whole contracts filled."""
    cost_e4: I64
    """Price paid for them in all."""
    fee_e4: I64
    miss: I64
    fill_order: I64
    """Per fill (one level taken): which order (position in these arrays)."""
    fill_price_e4: I64
    """Per fill: the price on the side bought."""
    fill_count: I64
    fill_fee_e4: I64

    @property
    def levels(self) -> list[list[tuple[int, int]]]:
        """Per order, the (price_e4, contracts) of each level taken, best first."""
        out: list[list[tuple[int, int]]] = [[] for _ in range(len(self.index))]
        for j, p, c in zip(
            self.fill_order.tolist(),
            self.fill_price_e4.tolist(),
            self.fill_count.tolist(),
            strict=True,
        ):
            out[j].append((p, c))
        return out


@dataclass
class _Plan:
    """The orders of one setting that may fill, with the levels each could take."""

    go: I64
    """Positions (in arrival order) of the orders that passed the book checks."""
    pair_order: I64
    """Per (order, level) pair, in walking order: position of the order."""
    pair_key: I64
    """(pairs, 4): market, leg, price on the leg, version: the level's identity."""
    pair_shown: I64
    """Whole contracts the level displayed on arrival."""
    by_level: I64
    """The pairs grouped by level, in arrival order within each (a stable sort)."""
    level_start: npt.NDArray[np.bool_]
    """In ``by_level`` order: whether a pair is its level's first."""
    pair_level: I64
    """Per pair, an id of its level."""


def _groups(keys: I64) -> list[tuple[int, I64]]:
    """(key, positions) of each distinct key."""
    order = np.argsort(keys, kind="stable")
    edges = np.flatnonzero(np.diff(keys[order])) + 1
    return [(int(keys[part[0]]), part) for part in np.split(order, edges) if len(part)]


def _entries(prep: Prepared, mids: I64, arrival: I64) -> I64:
    """Per order, the global index of its market's book entry on arrival (−1: no book)."""
    tape = prep.tape
    g = np.full(len(mids), -1, dtype=np.int64)
    for mid, at in _groups(mids):
        i = np.searchsorted(tape.times[mid], arrival[at], side="right") - 1
        g[at] = np.where(i >= 0, tape.entries[mid][np.maximum(i, 0)], -1) if len(i) else -1
    return g


def _checks(prep: Prepared, mids: I64, arrival: I64, g: I64) -> I64:
    """Per order, why it cannot fill (`Miss.FILLED`: it may)."""
    tape = prep.tape
    has = g >= 0
    e = np.maximum(g, 0)
    if len(tape.yes) == 0:
        e = np.zeros(0, dtype=np.int64)
        has = np.zeros(len(g), dtype=np.bool_)
    yes = np.where(has, tape.yes[e], -1) if len(e) else np.full(len(g), -1)
    no = np.where(has, tape.no[e], -1) if len(e) else np.full(len(g), -1)
    valid = has & tape.valid[e] if len(e) else has
    sid = np.where(has, tape.sid[e], -1) if len(e) else np.full(len(g), -1)
    vouched = np.full(len(g), -1, dtype=np.int64)
    for s, at in _groups(sid):
        times = tape.sid_times.get(s)
        if times is None or not len(times):
            continue
        i = np.searchsorted(times, arrival[at], side="right") - 1
        vouched[at] = np.where(i >= 0, times[np.maximum(i, 0)], -1)
    max_age = round(prep.params.max_book_age_s * SECOND_NS)
    stale = (vouched < 0) | (arrival - vouched > max_age)
    crossed = (yes >= 0) & (no >= 0) & (yes + no >= ONE_E4)
    miss: I64 = np.select(
        [arrival >= tape.close_ns[mids], ~has, ~valid, crossed, stale],
        [Miss.MARKET_CLOSED, Miss.NO_BOOK, Miss.BOOK_INVALID, Miss.BOOK_CROSSED, Miss.BOOK_STALE],
        Miss.FILLED,
    ).astype(np.int64)
    return miss


def _plan(prep: Prepared, sel: I64, mids: I64, miss: I64, g: I64) -> _Plan:
    """The levels each order that passed the checks can take, best first: displayed on its
    leg (buying YES takes the NO bids, YES price = 1 − NO price), at or better than its
    limit."""
    d, tape = prep.decisions, prep.tape
    go = np.flatnonzero(miss == Miss.FILLED)
    leg = np.where(d.side[sel[go]] == YES, NO, YES)
    floor = ONE_E4 - d.price_e4[sel[go]]
    e = g[go]
    price = tape.depth_price[e, leg]
    shown = tape.depth_qty[e, leg] // KALSHI_QTY_SCALE
    version = tape.depth_version[e, leg]
    ok = (price >= floor[:, None]) & (shown > 0)
    rows, cols = np.nonzero(ok)
    key = np.stack(
        [mids[go][rows], leg[rows], price[rows, cols], version[rows, cols]], axis=1
    ).astype(np.int64)
    # One int64 per level (market 20 bits, leg 1, price 14, version 28); pairs are in arrival
    # order, so a stable sort keeps arrival order within each level.
    if len(key) and (key[:, 0].max() >= 1 << 20 or key[:, 3].max() >= 1 << 28):
        msg = "more than 2^20 markets or 2^28 changes of one level in a session"
        raise ValueError(msg)
    packed = (((key[:, 0] << 1) | key[:, 1]) << 42) | (key[:, 2] << 28) | key[:, 3]
    by_level = np.argsort(packed, kind="stable")
    starts = _starts(packed[by_level])
    level = np.empty(len(by_level), dtype=np.int64)
    level[by_level] = np.cumsum(starts) - 1
    return _Plan(go, go[rows], key, shown[rows, cols], by_level, starts, level)


def _starts(sorted_keys: I64) -> npt.NDArray[np.bool_]:
    """Whether each element of a grouped array begins its group."""
    if not len(sorted_keys):
        return np.zeros(0, dtype=np.bool_)
    return np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))


def _fixed_point(plan: _Plan, want: I64) -> I64 | None:
    """Contracts each pair fills (None: no fixed point within `MAX_ROUNDS`)."""
    n = len(plan.pair_order)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    by_level, level_start = plan.by_level, plan.level_start
    order_start = np.concatenate(([True], plan.pair_order[1:] != plan.pair_order[:-1]))
    shown = plan.pair_shown[by_level]
    need_max = want[plan.pair_order]
    fill = np.zeros(n, dtype=np.int64)
    for _ in range(MAX_ROUNDS):
        before = np.cumsum(fill) - fill
        need = np.maximum(
            need_max - (before - np.maximum.accumulate(np.where(order_start, before, 0))), 0
        )
        asked = need[by_level]
        total = np.cumsum(asked)
        base = np.maximum.accumulate(np.where(level_start, total - asked, 0))
        prior = total - asked - base
        new = np.empty(n, dtype=np.int64)
        new[by_level] = np.minimum(asked, np.maximum(shown - prior, 0))
        if np.array_equal(new, fill):
            return fill
        fill = new
    return None


def _fees(prep: Prepared, mids: I64, price: I64, count: I64, t: I64) -> I64:
    """Each fill's taker fee: `FeeSchedule.fee_e4`, called once per distinct (series, terms,
    rounding era, price, count) and kept on ``prep`` in a (price, count) table per series and
    era."""
    out = np.zeros(len(price), dtype=np.int64)
    if not len(price):
        return out
    names = sorted(set(prep.series))
    for si, at in _groups(prep.series_id[mids]):
        schedule = prep.fees.get(names[si], DEFAULT_FEES)
        starts = np.asarray([x.from_ns for x in schedule.terms], dtype=np.int64)
        ts = t[at]
        era = np.searchsorted(starts, ts, side="right") * 2 + (ts >= SUBPENNY_FROM_NS)
        p, c = price[at], count[at]
        for e, where in _groups(era):
            table = prep.fee_tables.get((si, e))
            if table is None or table.shape[1] <= c[where].max():
                grown = np.full((ONE_E4 + 1, int(c[where].max()) + 1), -1, dtype=np.int64)
                if table is not None:
                    grown[:, : table.shape[1]] = table
                table = prep.fee_tables[(si, e)] = grown
            got = table[p[where], c[where]]
            todo = np.flatnonzero(got < 0)
            if len(todo):
                pairs, first = np.unique(
                    np.stack([p[where][todo], c[where][todo]], axis=1), axis=0, return_index=True
                )
                for (pp, cc), i in zip(pairs.tolist(), first.tolist(), strict=True):
                    at_ns = int(ts[where][todo][i])
                    table[pp, cc] = schedule.fee_e4(pp, cc, at_ns, role=Role.TAKER)
                got = table[p[where], c[where]]
            out[at[where]] = got
    return out


@dataclass
class Arrivals:
    """Every decision's order under one latency draw, in arrival order, with the book checks
    and the levels it could take — none of which depends on the threshold."""

    index: I64
    """Decision rows, in arrival order."""
    decision_ns: I64
    order_ns: I64
    arrival_ns: I64
    miss: I64
    plan: _Plan


def arrive(prep: Prepared, decision_ns: I64, order_ns: I64) -> Arrivals:
    """Orders for every decision (``decision_ns``/``order_ns``: the latencies drawn for each
    decision row), checked against the book on arrival."""
    d = prep.decisions
    arrival = d.recv_ns + decision_ns + order_ns
    index = np.argsort(arrival, kind="stable")
    arrival = arrival[index]
    mids = d.market[index]
    g = _entries(prep, mids, arrival)
    miss = _checks(prep, mids, arrival, g)
    plan = _plan(prep, index, mids, miss, g)
    return Arrivals(index, decision_ns[index], order_ns[index], arrival, miss, plan)


def _select(prep: Prepared, arrivals: Arrivals, threshold_e4: int) -> tuple[Arrivals, I64]:
    """The orders of the decisions at or above the threshold (still in arrival order), and
    their sizes."""
    keep = prep.decisions.edge_e4[arrivals.index] >= threshold_e4
    position = np.cumsum(keep) - 1
    plan = arrivals.plan
    pairs = keep[plan.pair_order]
    pair_position = np.cumsum(pairs) - 1
    kept = plan.by_level[pairs[plan.by_level]]
    sub = Arrivals(
        arrivals.index[keep],
        arrivals.decision_ns[keep],
        arrivals.order_ns[keep],
        arrivals.arrival_ns[keep],
        arrivals.miss[keep],
        _Plan(
            position[plan.go[keep[plan.go]]],
            position[plan.pair_order[pairs]],
            plan.pair_key[pairs],
            plan.pair_shown[pairs],
            pair_position[kept],
            _starts(plan.pair_level[kept]),
            plan.pair_level[pairs],
        ),
    )
    return sub, prep.decisions.size[sub.index]


def _finish(prep: Prepared, a: Arrivals, fill: I64) -> Orders:
    took = fill > 0
    fill_order = a.plan.pair_order[took]
    fill_price = ONE_E4 - a.plan.pair_key[took, 2]
    fill_count = fill[took]
    n = len(a.index)
    fee = _fees(
        prep,
        prep.decisions.market[a.index][fill_order],
        fill_price,
        fill_count,
        a.arrival_ns[fill_order],
    )

    def per_order(values: I64) -> I64:
        # Sums of ints below 2^53 are exact in float64.
        summed: I64 = np.bincount(fill_order, values, minlength=n).astype(np.int64)
        return summed

    filled, cost, fees = per_order(fill_count), per_order(fill_count * fill_price), per_order(fee)
    miss = np.where((a.miss == Miss.FILLED) & (filled == 0), Miss.NO_LIQUIDITY, a.miss)
    return Orders(
        a.index,
        a.decision_ns,
        a.order_ns,
        a.arrival_ns,
        filled,
        cost,
        fees,
        miss.astype(np.int64),
        fill_order,
        fill_price,
        fill_count,
        fee,
    )


def fill(prep: Prepared, arrivals: Arrivals, threshold_e4: int) -> Orders:
    """The orders of the decisions with ``edge_e4 >= threshold_e4`` and what they filled."""
    sub, want = _select(prep, arrivals, threshold_e4)
    fills = _fixed_point(sub.plan, want)
    return _finish(prep, sub, _sequential(sub.plan, want) if fills is None else fills)


def simulate(prep: Prepared, threshold_e4: int, decision_ns: I64, order_ns: I64) -> Orders:
    """`arrive` then `fill`: one setting."""
    return fill(prep, arrive(prep, decision_ns, order_ns), threshold_e4)


def _sequential(plan: _Plan, want: I64) -> I64:
    """Each pair's fill, order by order, with a consumption table."""
    sizes = want.tolist()
    consumed: dict[tuple[int, ...], int] = {}
    need: dict[int, int] = {}
    fills = []
    for j, key, shown in zip(
        plan.pair_order.tolist(),
        map(tuple, plan.pair_key.tolist()),
        plan.pair_shown.tolist(),
        strict=True,
    ):
        left = need.get(j, sizes[j])
        taken = consumed.get(key, 0)
        take = min(left, shown - taken)
        if take > 0:
            consumed[key] = taken + take
            need[j] = left - take
        fills.append(max(take, 0))
    return np.asarray(fills, dtype=np.int64)


def simulate_sequential(
    prep: Prepared, threshold_e4: int, decision_ns: I64, order_ns: I64
) -> Orders:
    """`simulate`, one order at a time (the reference the vectorised fill is held to)."""
    sub, want = _select(prep, arrive(prep, decision_ns, order_ns), threshold_e4)
    return _finish(prep, sub, _sequential(sub.plan, want))
