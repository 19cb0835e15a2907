"""Latency figures: ECDFs on a log axis and latency over time with reconnect/gap markers.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot state, no backend
switch): they render with Agg when saved and display inline in Jupyter.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from arbkit.analysis.latency import LatencyReport

_MARKER_STYLE = {
    "disconnect": "tab:red",
    "reconnect": "tab:red",
    "gap": "tab:orange",
    "resync": "tab:purple",
}


def ecdf(ax: Axes, values: pl.Series, label: str) -> None:
    """Empirical CDF of the positive values of ``values`` (a log axis cannot show <= 0)."""
    v = np.sort(values.drop_nulls().cast(pl.Float64).to_numpy())
    v = v[v > 0]
    if len(v) == 0:
        return
    ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=f"{label} (n={len(v):,})")


def _finish_ecdf(ax: Axes, xlabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of samples ≤ x")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def ws_delay_ecdf(report: LatencyReport) -> Figure:
    """WebSocket one-way delay per Kalshi channel and per spot venue."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for (source, channel), group in report.ws_delays.group_by(
        "source", "channel", maintain_order=True
    ):
        ecdf(ax, group["delay_ms"], f"{source} {channel}")
    bound = report.clock.error_ms
    note = f" (Kalshi clock-corrected, ±{bound:.2g} ms)" if bound is not None else ""
    _finish_ecdf(ax, "one-way delay (ms)", "WebSocket delay" + note)
    return fig


def rest_ecdf(report: LatencyReport) -> Figure:
    """REST round trip, CDN age, and REST vs WebSocket lag and (non-zero) staleness."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    ecdf(left, report.rest_polls["rtt_ms"], f"round trip from {report.rest_rtt_basis}")
    _finish_ecdf(left, "ms", "REST round trip")
    ecdf(right, report.ws_states["lag_s"], "lag: WS change → REST shows it")
    ecdf(right, report.rest_matched["staleness_s"], "staleness of REST responses")
    ecdf(right, report.rest_polls["age_s"], "CDN Age header")
    _finish_ecdf(right, "s", "REST vs WebSocket top of book")
    return fig


def _markers(ax: Axes, events: pl.DataFrame) -> None:
    """Vertical lines at the Kalshi streams' disconnects, reconnects, gaps and resyncs."""
    seen: set[str] = set()
    for t, kind in (
        events.filter(pl.col("kind").is_in(list(_MARKER_STYLE))).select("time", "kind").iter_rows()
    ):
        ax.axvline(
            t, color=_MARKER_STYLE[kind], alpha=0.6, lw=0.8, label=None if kind in seen else kind
        )
        seen.add(kind)


def over_time(report: LatencyReport) -> Figure:
    """Kalshi WebSocket delay and REST staleness over the session, reconnects and gaps marked."""
    fig = Figure(figsize=(11, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    kalshi = report.ws_delays.filter(pl.col("source") == "kalshi")
    top.plot(
        kalshi["time"].to_list(), kalshi["delay_ms"].to_list(), ".", ms=2, label="Kalshi WS delay"
    )
    top.set_ylabel("ms")
    top.set_title("Kalshi WebSocket delay over time")
    rest = report.rest_matched.drop_nulls("staleness_s")
    bottom.plot(
        rest["time"].to_list(), rest["staleness_s"].to_list(), ".", ms=3, label="REST staleness"
    )
    bottom.plot(
        report.rest_polls["time"].to_list(),
        report.rest_polls["age_s"].to_list(),
        "x",
        ms=3,
        label="CDN age",
    )
    bottom.set_ylabel("s")
    bottom.set_title("REST staleness over time")
    for ax in (top, bottom):
        _markers(ax, report.events)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper right")
    return fig


def tracking(report: LatencyReport) -> Figure:
    """Replica minus Kalshi's official BRTI over time."""
    fig = Figure(figsize=(11, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(report.tracking["time"].to_list(), report.tracking["diff_usd"].to_list(), lw=0.8)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel("replica − official ($)")
    ax.set_title("BRTI replica tracking error")
    ax.grid(True, alpha=0.3)
    return fig


def latency_figures(report: LatencyReport) -> dict[str, Figure]:
    """Every figure of the latency report, by file stem."""
    figures = {
        "ws_delay_ecdf": ws_delay_ecdf(report),
        "rest_ecdf": rest_ecdf(report),
        "over_time": over_time(report),
    }
    if report.tracking.height:
        figures["tracking"] = tracking(report)
    return figures


def png(fig: Figure, dpi: int = 110) -> bytes:
    """A figure as PNG bytes (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
