"""The recorder's hot path holds flat memory: frames in, rows and Parquet parts out.

A minute of frames at 5k/s (Kalshi books, trades and tickers over rotating markets, Coinbase
updates) goes through the protocols into a real `SessionWriter`; after warm-up RSS must not
drift, and the structures that remember the past (trade ids, last tickers, removed
markets) stay bounded. `bench/bench_memory.py` runs the same for an hour of frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arbkit.venues.kalshi.protocol import TRADE_ID_MEMORY
from bench.bench_memory import flatness, rss_mb, run_hour

pytestmark = pytest.mark.timeout(180)


def test_a_minute_of_frames_holds_flat_memory(tmp_path: Path) -> None:
    samples: list[float] = []
    hour = run_hour(60, tmp_path, sample=lambda _second: samples.append(rss_mb()))
    assert hour.frame_no >= 300_000
    flat = flatness(samples[2:])
    assert flat["rss_drift_mb"] <= 10.0, samples
    assert flat["rss_band_mb"] <= 10.0, samples
    kalshi = hour.kalshi
    assert len(kalshi._trade_ids) == min(TRADE_ID_MEMORY, hour.trade_no)
    assert set(kalshi.books) == set(kalshi.markets) == set(hour.markets)
    assert set(kalshi._last_ticker) <= set(kalshi.markets)
