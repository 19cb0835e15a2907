"""Backtests of the signal rule on recorded sessions: which thresholds pay after Kalshi's fees,
at which latency.

The one decision path: sessions replay, in ``recv_ns`` order, through the unchanged
`arbkit.strategy.signals.Strategy` (`decisions`), so it sees only what had been received by
then. Orders then leave after a decision latency, reach Kalshi after an order latency
(`latency_models`), and fill against the book as it stood on arrival, walking displayed depth
net of what earlier simulated orders took (`fills`); fees are the series' own, settlement the
recorded result or the recorded index (`outcomes`), and `results` sums it up.

- `backtest` runs one setting and keeps everything: summary row, per-fill log, equity,
  settlements, figures.
- `sweep` runs a threshold × latency grid on any `concurrent.futures.Executor` and returns one
  row per setting (`arbkit.analysis.sweep`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from arbkit.analysis.backtest_plots import equity_curve, net_vs_threshold
from arbkit.analysis.latency_models import Distribution, Latency, LatencyModel
from arbkit.analysis.results import Settled, equity, fill_log, windows
from arbkit.analysis.sweep import (
    Runner,
    SessionLike,
    Setting,
    row,
    session_path,
    sweep,
    threshold_e4,
)
from arbkit.strategy.signals import SignalParams


@dataclass
class BacktestResult:
    """One setting's backtest over one or many sessions."""

    setting: Setting
    row: dict[str, Any]
    """The summary (the columns of a `sweep` row)."""
    settled: Settled

    @property
    def fills(self) -> pl.DataFrame:
        """Per order: time, market, side, price limit, size, levels taken, fee, latencies
        drawn, settlement and its source, PnL (`results.fill_log`)."""
        return fill_log(self.settled)

    @property
    def equity(self) -> pl.DataFrame:
        return equity(self.settled)

    @property
    def windows(self) -> pl.DataFrame:
        """Net PnL per UTC quarter hour (`results.windows`)."""
        return windows(self.settled)

    @property
    def settlements(self) -> pl.DataFrame:
        """Each market's outcome and which source settled it (`outcomes.SettlementSource`)."""
        return pl.DataFrame(
            [
                {
                    "session": p.path.name,
                    "market": o.market,
                    "yes_e4": o.yes_e4,
                    "source": o.source.value,
                    "value_e8": o.value_e8,
                    "at_ns": o.at_ns,
                }
                for p in self.settled.prepared
                for o in p.outcomes.values()
            ],
            infer_schema_length=None,
        )

    def plot(self) -> Figure:
        """Equity with and without fees, and drawdown."""
        s = self.setting
        return equity_curve(
            self.equity, f"threshold ${s.threshold_e4 / 1e4:g}, latency {s.latency_ms:g} ms"
        )


def backtest(
    sessions: Sequence[SessionLike],
    *,
    threshold: float = 0.02,
    latency_ms: float = 0.0,
    latency: Latency | None = None,
    params: SignalParams | None = None,
    seed: int = 0,
) -> BacktestResult:
    """One setting (threshold in dollars per contract after fees; ``latency_ms`` added to
    ``latency``'s order leg) over ``sessions``, everything kept."""
    setting = Setting(threshold_e4(threshold), float(latency_ms))
    base = replace(params or SignalParams(), threshold_e4=setting.threshold_e4)
    runner = Runner([session_path(s) for s in sessions], base, latency or Latency())
    part, settled = runner.partial(setting, seed)
    return BacktestResult(setting, row(setting, [part]), settled)


__all__ = [
    "BacktestResult",
    "Distribution",
    "Latency",
    "LatencyModel",
    "backtest",
    "net_vs_threshold",
    "sweep",
]
