"""arbkit: record, replay and backtest latency arbitrage between Kalshi and the BRTI index."""

from __future__ import annotations

__version__ = "0.1.0"

from arbkit.core.storage import Session
from arbkit.replay.session import ReplaySession, Sessions, open_session, sessions

__all__ = ["ReplaySession", "Session", "Sessions", "__version__", "open_session", "sessions"]
