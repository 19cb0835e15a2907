"""Backtest figures (matplotlib, Agg; each function returns its Figure)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import polars as pl
from matplotlib.figure import Figure


def net_vs_threshold(table: pl.DataFrame) -> Figure:
    """Net PnL against threshold, one line per latency (a `sweep` table)."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    for (ms,), part in table.sort("threshold").group_by("latency_ms", maintain_order=True):
        ax.plot(part["threshold"], part["net_pnl_dollars"], marker=".", label=f"{ms:g} ms")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="threshold ($ per contract, after fees)", ylabel="net PnL ($)")
    ax.set_title("Net PnL by threshold and latency")
    ax.legend(title="latency")
    fig.tight_layout()
    return fig


def equity_curve(equity: pl.DataFrame, title: str = "") -> Figure:
    """Cumulative PnL with and without fees, and drawdown beneath (`results.equity`)."""
    fig = Figure(figsize=(8, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    t = equity["time"].to_list()
    top.step(t, equity["gross_dollars"], where="post", label="before fees")
    top.step(t, equity["net_dollars"], where="post", label="after fees")
    top.axhline(0, color="grey", lw=0.8)
    top.set(ylabel="cumulative PnL ($)", title=title or "Equity")
    top.legend()
    bottom.fill_between(t, 0, -equity["drawdown_dollars"].to_numpy(), step="post", color="C3")
    bottom.set(ylabel="drawdown ($)", xlabel="settlement time (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
