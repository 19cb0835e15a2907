"""arbkit: record, replay and backtest latency arbitrage between Kalshi and the BRTI index."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
