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
annualised); ``max_drawdown`` the largest fall of cumulative net PnL, taken at each settlement
time, from a running peak (starting at 0).
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
        yes = prep.yes_e4[mids]
        payoffs.append(np.where(yes < 0, -1, np.where(sides == YES, yes, ONE_E4 - yes)))
        times.append(np.maximum(prep.settle_ns[mids], o.arrival_ns))
    return Settled(list(prepared), list(orders), payoffs, times)


def _cat(parts: Sequence[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def gross_e4(s: Settled) -> int:
    """Gross PnL of the settled fills."""
    payoff = _cat(s.payoff_e4)
    filled = _cat([o.filled for o in s.orders])
    cost = _cat([o.cost_e4 for o in s.orders])
    return int(np.where(payoff >= 0, filled * payoff - cost, 0).sum())


@dataclass
class Partial:
    """What a setting made on some sessions, in sums that add across sessions (`combine`):
    a sweep's worker returns one per session and setting, small enough to send anywhere."""

    orders: int
    trades: int
    contracts: int
    settled_contracts: int
    settled_trades: int
    winning_trades: int
    gross_e4: int
    fees_e4: int
    edge_signal_e4: int
    """Σ the decisions' edge × contracts filled, over settled fills."""
    reference_gross_e4: int
    """Gross PnL of the same threshold with no latency."""
    settle_ns: I64
    """Distinct settlement times, ascending, with the net PnL settled at each."""
    net_e4: I64
    start_ns: int
    end_ns: int


def partial(s: Settled, reference: Settled) -> Partial:
    """The sums of one setting's orders (``reference``: the same threshold, no latency)."""
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
    traded = filled > 0
    times, where = np.unique(t[traded & ok], return_inverse=True)
    by_time = np.bincount(where.reshape(-1), net[traded & ok], minlength=len(times))
    return Partial(
        orders=len(filled),
        trades=int(traded.sum()),
        contracts=int(filled.sum()),
        settled_contracts=int(filled[ok].sum()),
        settled_trades=int((traded & ok).sum()),
        winning_trades=int((traded & ok & (net > 0)).sum()),
        gross_e4=int(gross.sum()),
        fees_e4=int(fee[ok].sum()),
        edge_signal_e4=int((edge_sig * filled)[ok].sum()),
        reference_gross_e4=gross_e4(reference),
        settle_ns=times.astype(np.int64),
        net_e4=by_time.astype(np.int64),
        start_ns=min((p.start_ns for p in s.prepared), default=0),
        end_ns=max((p.end_ns for p in s.prepared), default=0),
    )


def _windows(parts: Sequence[Partial], t: I64, net: I64) -> F64:
    """Net PnL (e4) per 15-minute window over the sessions' span."""
    first = min(p.start_ns for p in parts) // WINDOW_NS
    last = max(max(p.end_ns for p in parts), int(t.max()) if len(t) else 0) // WINDOW_NS
    out = np.zeros(int(last - first + 1), dtype=np.float64)
    np.add.at(out, (t // WINDOW_NS - first).astype(np.int64), net.astype(np.float64))
    return out


def _drawdown(net_by_time: I64) -> float:
    """Largest fall of cumulative PnL from its running peak (starting at 0)."""
    equity = np.cumsum(net_by_time).astype(np.float64)
    if len(equity) == 0:
        return 0.0
    peak = np.maximum.accumulate(np.concatenate(([0.0], equity)))[1:]
    return float(np.max(peak - equity, initial=0.0))


def combine(parts: Sequence[Partial]) -> dict[str, Any]:
    """The summary row of a setting from its parts (money in dollars; see the module doc)."""
    t = _cat([p.settle_ns for p in parts])
    net_t = _cat([p.net_e4 for p in parts])
    order = np.argsort(t, kind="stable")
    times, where = np.unique(t[order], return_inverse=True)
    by_time = np.bincount(where.reshape(-1), net_t[order], minlength=len(times))
    windows = _windows(parts, t, net_t)
    std = float(windows.std()) if len(windows) > 1 else 0.0

    def total(name: str) -> int:
        return sum(int(getattr(p, name)) for p in parts)

    gross, fees, settled = total("gross_e4"), total("fees_e4"), total("settled_contracts")
    edge, trades = total("reference_gross_e4"), total("settled_trades")
    net = gross - fees
    return {
        "orders": total("orders"),
        "trades": total("trades"),
        "contracts": total("contracts"),
        "unsettled_contracts": total("contracts") - settled,
        "gross_pnl_dollars": gross / DOLLAR,
        "fees_dollars": fees / DOLLAR,
        "net_pnl_dollars": net / DOLLAR,
        "edge_pnl_dollars": edge / DOLLAR,
        "latency_cost_dollars": (edge - gross) / DOLLAR,
        "hit_rate": total("winning_trades") / trades if trades else None,
        "mean_edge_signal": total("edge_signal_e4") / settled / DOLLAR if settled else None,
        "mean_edge_realised": net / settled / DOLLAR if settled else None,
        "sharpe_15m": float(windows.mean()) / std if std > 0 else None,
        "max_drawdown_dollars": _drawdown(by_time.astype(np.int64)) / DOLLAR,
    }


def summary(s: Settled, reference: Settled) -> dict[str, Any]:
    """The setting's summary row (``reference``: the same threshold with no latency)."""
    return combine([partial(s, reference)])


def windows(s: Settled) -> pl.DataFrame:
    """Net PnL per UTC quarter hour (by settlement time) over the sessions' span."""
    part = partial(s, s)
    pnl = _windows([part], part.settle_ns, part.net_e4)
    first = part.start_ns // WINDOW_NS * WINDOW_NS
    starts = first + np.arange(len(pnl), dtype=np.int64) * WINDOW_NS
    return pl.DataFrame({"window_ns": starts, "net_dollars": pnl / DOLLAR}).with_columns(
        (pl.col("window_ns") // 1000).cast(pl.Datetime("us", "UTC")).alias("window")
    )


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
    """Cumulative PnL at each settlement time (``time``), with and without fees, and drawdown."""
    log = fill_log(s).filter(pl.col("net_e4").is_not_null() & (pl.col("filled") > 0))
    return (
        log.group_by("settle_ns")
        .agg(pl.col("gross_e4", "net_e4").sum())
        .sort("settle_ns")
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
