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

from arbkit.venues.kalshi.rest import STREAM as KALSHI_REST
from arbkit.venues.kalshi.vocab import STREAM as KALSHI_WS

if TYPE_CHECKING:
    from arbkit.analysis.latency import LatencyReport

MAX_POINTS = 20_000
"""Most points one series draws (longer series are thinned evenly; ECDFs keep their shape as
quantiles), so a day-long session plots in about the time a short one does."""
KALSHI_STREAMS = (KALSHI_WS, KALSHI_REST)
"""The streams whose events `over_time` marks."""
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
    n = len(v)
    if n == 0:
        return
    y = np.arange(1, n + 1) / n
    if n > MAX_POINTS:
        y = np.linspace(1 / n, 1.0, MAX_POINTS)
        v = np.interp(y * (n - 1), np.arange(n), v)  # linear quantiles of the sorted values
    ax.step(v, y, where="post", label=f"{label} (n={n:,})")


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


def _series(ax: Axes, frame: pl.DataFrame, value: str, style: str, label: str) -> None:
    """``value`` against ``time``, thinned evenly to `MAX_POINTS`."""
    step = max(1, frame.height // MAX_POINTS)
    thin = frame.gather_every(step) if step > 1 else frame
    note = f" (every {step}th)" if step > 1 else ""
    ax.plot(thin["time"].to_numpy(), thin[value].to_numpy(), style, ms=2, label=label + note)


def _markers(ax: Axes, events: pl.DataFrame) -> None:
    """Vertical lines at the Kalshi streams' disconnects, reconnects, gaps and resyncs (the
    figure is Kalshi's: a spot venue's reconnects would mark what it does not show)."""
    kalshi = events.filter(pl.col("stream").is_in(KALSHI_STREAMS))
    # One collection per kind, not a line per event: a day has tens of thousands of them.
    for kind, color in _MARKER_STYLE.items():
        times = kalshi.filter(pl.col("kind") == kind)["time"].to_numpy()
        if len(times):
            ax.vlines(
                times, 0, 1, transform=ax.get_xaxis_transform(), colors=color, alpha=0.6, lw=0.8
            ).set_label(kind)


def over_time(report: LatencyReport) -> Figure:
    """Kalshi WebSocket delay and REST staleness over the session, reconnects and gaps marked."""
    fig = Figure(figsize=(11, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    kalshi = report.ws_delays.filter(pl.col("source") == "kalshi")
    _series(top, kalshi, "delay_ms", ".", "Kalshi WS delay")
    top.set_ylabel("ms")
    top.set_title("Kalshi WebSocket delay over time")
    rest = report.rest_matched.drop_nulls("staleness_s")
    _series(bottom, rest, "staleness_s", ".", "REST staleness")
    _series(bottom, report.rest_polls.drop_nulls("age_s"), "age_s", "x", "CDN age")
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
    _series(ax, report.tracking, "diff_usd", "-", "replica − official")
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
