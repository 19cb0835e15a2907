"""The backtest's second stage: orders sent after their latency, filled against the book as it
stood when they reached Kalshi.

One order per decision at or above the threshold: buy ``size`` contracts of the decision's
side, limit the ask it saw (an immediate-or-cancel taker order). It reaches Kalshi after its
decision and order latencies; there it walks the displayed depth of that moment, best price
first, down to its limit, in whole contracts — minus what earlier simulated orders already took
at each level: a level's consumption is remembered until the book changes at that level
(NautilusTrader's ``liquidity_consumption``), so no two orders fill the same displayed size.
No fill when the market has no book, its book is invalid (gap, disconnect, awaiting its
snapshot), crossed, or stale (its subscription silent for more than ``max_book_age_s``), or the
market has closed. Each level taken is one fill, charged the series' taker fee
(`FeeSchedule.fee_e4`, the rounding of its date) at the arrival time.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from arbkit.analysis.decisions import NO, ONE_E4, YES, Prepared
from arbkit.core.fixed import KALSHI_QTY_SCALE
from arbkit.strategy.fees import Role
from arbkit.strategy.signals import DEFAULT_FEES

I64 = npt.NDArray[np.int64]
SECOND_NS = 10**9


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
    levels: list[list[tuple[int, int]]]
    """Per order, the (price_e4 on the side bought, contracts) of each level taken."""


def simulate(prep: Prepared, threshold_e4: int, decision_ns: I64, order_ns: I64) -> Orders:
    """Send every decision with ``edge_e4 >= threshold_e4``; ``decision_ns``/``order_ns`` are
    the latencies drawn for every decision row (so each threshold sees the same draws)."""
    d = prep.decisions
    sel = np.flatnonzero(d.edge_e4 >= threshold_e4)
    dec, order = decision_ns[sel], order_ns[sel]
    arrival = d.recv_ns[sel] + dec + order
    by_arrival = np.argsort(arrival, kind="stable")
    sel, dec, order, arrival = (a[by_arrival] for a in (sel, dec, order, arrival))
    n = len(sel)
    filled = np.zeros(n, dtype=np.int64)
    cost = np.zeros(n, dtype=np.int64)
    fee = np.zeros(n, dtype=np.int64)
    miss = np.zeros(n, dtype=np.int64)
    levels: list[list[tuple[int, int]]] = []
    tape = prep.tape
    max_age = round(prep.params.max_book_age_s * SECOND_NS)
    consumed: dict[tuple[int, int, int], tuple[int, int]] = {}
    schedules = [prep.fees.get(s, DEFAULT_FEES) for s in prep.series]
    markets, sides, sizes, limits = (
        a[sel].tolist() for a in (d.market, d.side, d.size, d.price_e4)
    )
    for j, t in enumerate(arrival.tolist()):
        mid, side, want, limit = markets[j], sides[j], sizes[j], limits[j]
        taken: list[tuple[int, int]] = []
        levels.append(taken)
        k = tape.top_at(mid, t)
        close = tape.close_ns[mid]
        if close is not None and t >= close:
            miss[j] = Miss.MARKET_CLOSED
            continue
        if k < 0:
            miss[j] = Miss.NO_BOOK
            continue
        if not tape.top_valid[mid][k]:
            miss[j] = Miss.BOOK_INVALID
            continue
        yes_bid, no_bid = tape.top_yes[mid][k], tape.top_no[mid][k]
        if yes_bid >= 0 and no_bid >= 0 and yes_bid + no_bid >= ONE_E4:
            miss[j] = Miss.BOOK_CROSSED
            continue
        vouched = tape.vouched_at(tape.top_sid[mid][k], t)
        if vouched is None or t - vouched > max_age:
            miss[j] = Miss.BOOK_STALE
            continue
        # Buying YES takes the NO bids (YES price 1 − NO price), buying NO the YES bids.
        leg, best = (NO, no_bid) if side == YES else (YES, yes_bid)
        floor = ONE_E4 - limit
        ladder = tape.prices.get((mid, leg), [])
        i = bisect_right(ladder, best) - 1
        need = want
        schedule = schedules[mid]
        while need > 0 and i >= 0 and ladder[i] >= floor:
            p = ladder[i]
            i -= 1
            key = (mid, leg, p)
            qty, version = tape.qty_at(key, t)
            used = consumed.get(key)
            already = used[1] if used is not None and used[0] == version else 0
            take = min(need, (qty - already) // KALSHI_QTY_SCALE)
            if take <= 0:
                continue
            consumed[key] = (version, already + take * KALSHI_QTY_SCALE)
            price = ONE_E4 - p
            taken.append((price, take))
            need -= take
            cost[j] += price * take
            fee[j] += schedule.fee_e4(price, take, t, role=Role.TAKER)
        filled[j] = want - need
        if not taken:
            miss[j] = Miss.NO_LIQUIDITY
    return Orders(sel, dec, order, arrival, filled, cost, fee, miss, levels)
