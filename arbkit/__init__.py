"""arbkit: record, replay and backtest latency arbitrage between Kalshi and the BRTI index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from arbkit.core.storage import Session
from arbkit.replay.session import ReplaySession, Sessions, open_session, sessions

if TYPE_CHECKING:
    from arbkit.session.notebook import Recording, record

_LAZY = frozenset({"Recording", "record"})
"""Loaded on first use: recording pulls in the clients and the embedded world, which
``import arbkit`` (and every CLI command) should not pay for."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from arbkit.session import notebook

        return getattr(notebook, name)
    msg = f"module 'arbkit' has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "Recording",
    "ReplaySession",
    "Session",
    "Sessions",
    "__version__",
    "open_session",
    "record",
    "sessions",
]
