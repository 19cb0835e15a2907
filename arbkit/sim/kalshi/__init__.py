"""Kalshi side of the embedded world: REST v2 and WebSocket v2 on loopback (see `server`)."""

from arbkit.sim.kalshi.server import REST_PREFIX, TIME_HEADER, WS_PATH, KalshiSim
from arbkit.sim.kalshi.wire import ERAS, Era

__all__ = ["ERAS", "REST_PREFIX", "TIME_HEADER", "WS_PATH", "Era", "KalshiSim"]
