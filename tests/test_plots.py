"""Latency figures: what `arbkit.analysis.plots` draws from a report's frames."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from matplotlib.figure import Figure

from arbkit.analysis.plots import _markers


def test_over_time_marks_only_kalshis_stream_events() -> None:
    """The figure is Kalshi's: a spot venue's reconnects and gaps are not drawn on it."""
    t = datetime(2026, 1, 1, tzinfo=UTC)
    events = pl.DataFrame(
        {
            "time": [t] * 5,
            "stream": ["kalshi_ws", "kalshi_ws", "kraken", "coinbase", "kalshi_ws"],
            "kind": ["reconnect", "gap", "reconnect", "gap", "connect"],
        }
    )
    ax = Figure().add_subplot()
    _markers(ax, events)
    marked = {str(c.get_label()): len(c.get_segments()) for c in ax.collections}
    assert marked == {"gap": 1, "reconnect": 1}  # one collection per kind, Kalshi's events only
