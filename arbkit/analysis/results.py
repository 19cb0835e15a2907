"""What one setting made: the summary row, the per-fill log, equity and drawdown.

Money is attributed when a market settles (its close): a fill's gross PnL is
``contracts × payoff − price paid`` (payoff $1 or $0 on the side bought, from
`arbkit.analysis.outcomes`), its net PnL that minus its fees. The split: ``edge`` is the gross
PnL the same threshold makes with no latency at all (orders reaching Kalshi as they are
decided, through the same fill model), ``latency_cost`` what this setting's latency lost
against that (worse prices, depth gone, no fill), so ``gross = edge − latency_cost`` and
``net = gross − fees``. Fills on markets with no settlement are counted
(``unsettled_contracts``) and left out of the PnL.

The 15-minute series: net PnL per UTC quarter hour over the sessions' span (empty windows
count as 0); ``sharpe_15m`` is its mean over its standard deviation (per window, not
annualised); ``max_drawdown`` the largest fall of cumulative net PnL from a running peak
(starting at 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from arbkit.analysis.decisions import ONE_E4, YES, Prepared
from arbkit.analysis.fills import Miss, Orders
from arbkit.analysis.outcomes import SettlementSource

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
WINDOW_NS = 15 * 60 * 10**9
DOLLAR = float(ONE_E4)


@dataclass
class Settled:
    """One setting's orders over all sessions, with their settlement attached."""

    prepared: list[Prepared]
    orders: list[Orders]
    payoff_e4: list[I64]
    """Per order, what a contract of its side paid ($1 = 10_000; −1 unsettled)."""
    settle_ns: list[I64]


def settle(prepared: Sequence[Prepared], orders: Sequence[Orders]) -> Settled:
    payoffs, times = [], []
    for prep, o in zip(prepared, orders, strict=True):
        d = prep.decisions
        mids, sides = d.market[o.index], d.side[o.index]
        yes = np.array(
            [
                -1 if (x := prep.outcomes.get(m)) is None or x.yes_e4 is None else x.yes_e4
                for m in (prep.tape.markets[i] for i in mids.tolist())
            ],
            dtype=np.int64,
        )
        payoff = np.where(yes < 0, -1, np.where(sides == YES, yes, ONE_E4 - yes))
        close = np.array(
            [prep.tape.close_ns[i] or prep.end_ns for i in mids.tolist()], dtype=np.int64
        )
        payoffs.append(payoff)
        times.append(np.maximum(close, o.arrival_ns))
    return Settled(list(prepared), list(orders), payoffs, times)


def _cat(parts: Sequence[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _windows(s: Settled, t: I64, pnl: I64) -> F64:
    """Net PnL (e4) per 15-minute window over the sessions' span."""
    first = min(p.start_ns for p in s.prepared) // WINDOW_NS
    last = max(max(p.end_ns for p in s.prepared), int(t.max()) if len(t) else 0) // WINDOW_NS
    out = np.zeros(int(last - first + 1), dtype=np.float64)
    np.add.at(out, (t // WINDOW_NS - first).astype(np.int64), pnl.astype(np.float64))
    return out


def _drawdown(equity: F64) -> float:
    if len(equity) == 0:
        return 0.0
    peak = np.maximum.accumulate(np.concatenate(([0.0], equity)))[1:]
    return float(np.max(peak - equity, initial=0.0))


def gross_e4(s: Settled) -> int:
    """Gross PnL of the settled fills."""
    payoff = _cat(s.payoff_e4)
    filled = _cat([o.filled for o in s.orders])
    cost = _cat([o.cost_e4 for o in s.orders])
    return int(np.where(payoff >= 0, filled * payoff - cost, 0).sum())


def summary(s: Settled, reference: Settled) -> dict[str, Any]:
    """The setting's summary (money in dollars; see the module doc); ``reference``: the same
    threshold with no latency."""
    filled = _cat([o.filled for o in s.orders])
    cost = _cat([o.cost_e4 for o in s.orders])
    fee = _cat([o.fee_e4 for o in s.orders])
    payoff = _cat(s.payoff_e4)
    t = _cat(s.settle_ns)
    edge_sig = _cat(
        [p.decisions.edge_e4[o.index] for p, o in zip(s.prepared, s.orders, strict=True)]
    )
    ok = payoff >= 0
    gross = np.where(ok, filled * payoff - cost, 0)
    net = gross - np.where(ok, fee, 0)
    edge = gross_e4(reference)
    traded = filled > 0
    contracts = int(filled.sum())
    settled_contracts = int(filled[ok].sum())
    order = np.argsort(t, kind="stable")
    equity = np.cumsum(net[order]).astype(np.float64)
    windows = _windows(s, t, net)
    std = float(windows.std()) if len(windows) > 1 else 0.0
    trades = int(traded.sum())
    settled_trades = traded & ok
    return {
        "orders": len(filled),
        "trades": trades,
        "contracts": contracts,
        "unsettled_contracts": contracts - settled_contracts,
        "gross_pnl_dollars": float(gross.sum()) / DOLLAR,
        "fees_dollars": float(fee[ok].sum()) / DOLLAR,
        "net_pnl_dollars": float(net.sum()) / DOLLAR,
        "edge_pnl_dollars": edge / DOLLAR,
        "latency_cost_dollars": (edge - int(gross.sum())) / DOLLAR,
        "hit_rate": float((net[settled_trades] > 0).mean()) if settled_trades.any() else None,
        "mean_edge_signal": (
            float((edge_sig * filled)[ok].sum()) / settled_contracts / DOLLAR
            if settled_contracts
            else None
        ),
        "mean_edge_realised": (
            float(net.sum()) / settled_contracts / DOLLAR if settled_contracts else None
        ),
        "sharpe_15m": float(windows.mean()) / std if std > 0 else None,
        "max_drawdown_dollars": _drawdown(equity) / DOLLAR,
    }


def fill_log(s: Settled) -> pl.DataFrame:
    """One row per order: when, which market and side, latencies drawn, levels taken, fee,
    settlement (and its source), PnL; ``miss`` says why an order filled nothing."""
    frames = []
    for prep, o, payoff, t in zip(s.prepared, s.orders, s.payoff_e4, s.settle_ns, strict=True):
        d = prep.decisions
        names = [prep.tape.markets[i] for i in d.market[o.index].tolist()]
        sources = [
            (x.source if (x := prep.outcomes.get(m)) is not None else SettlementSource.NONE).value
            for m in names
        ]
        frames.append(
            pl.DataFrame(
                {
                    "session": prep.path.name,
                    "signal_ns": d.recv_ns[o.index],
                    "arrival_ns": o.arrival_ns,
                    "market": names,
                    "side": np.where(d.side[o.index] == YES, "yes", "no"),
                    "limit_e4": d.price_e4[o.index],
                    "size": d.size[o.index],
                    "filled": o.filled,
                    "cost_e4": o.cost_e4,
                    "fee_e4": o.fee_e4,
                    "decision_latency_ns": o.decision_ns,
                    "order_latency_ns": o.order_ns,
                    "levels": [[{"price_e4": p, "count": c} for p, c in lv] for lv in o.levels],
                    "edge_signal_e4": d.edge_e4[o.index],
                    "fair_e4": d.fair_e4[o.index],
                    "miss": [Miss(m).name.lower() for m in o.miss.tolist()],
                    "settle_ns": t,
                    "payoff_e4": payoff,
                    "settlement": sources,
                },
                schema_overrides={
                    "levels": pl.List(pl.Struct({"price_e4": pl.Int64, "count": pl.Int64}))
                },
            )
        )
    if not frames:
        return pl.DataFrame()
    settled = pl.col("payoff_e4") >= 0
    gross = pl.col("filled") * pl.col("payoff_e4") - pl.col("cost_e4")
    return (
        pl.concat(frames)
        .with_columns(
            pl.when(settled).then(pl.col("payoff_e4")).alias("payoff_e4"),
            pl.when(settled).then(gross).alias("gross_e4"),
            pl.when(settled).then(gross - pl.col("fee_e4")).alias("net_e4"),
        )
        .sort("arrival_ns", maintain_order=True)
    )


def equity(s: Settled) -> pl.DataFrame:
    """Cumulative PnL at each settlement (``time``), with and without fees, and drawdown."""
    log = fill_log(s).filter(pl.col("net_e4").is_not_null() & (pl.col("filled") > 0))
    return (
        log.sort("settle_ns")
        .select(
            "settle_ns",
            ((pl.col("settle_ns") // 1000).cast(pl.Datetime("us", "UTC"))).alias("time"),
            (pl.col("gross_e4").cum_sum() / DOLLAR).alias("gross_dollars"),
            (pl.col("net_e4").cum_sum() / DOLLAR).alias("net_dollars"),
        )
        .with_columns(
            (pl.col("net_dollars").cum_max().clip(lower_bound=0) - pl.col("net_dollars")).alias(
                "drawdown_dollars"
            )
        )
    )
