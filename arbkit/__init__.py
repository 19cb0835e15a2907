"""arbkit: record, replay and backtest latency arbitrage between Kalshi and the BRTI index."""

from __future__ import annotations

__version__ = "0.1.0"

from arbkit.core.storage import Session, open_session

__all__ = ["Session", "__version__", "open_session"]
