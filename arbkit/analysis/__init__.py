"""Analyses of recorded sessions: latency (REST vs WebSocket) and its figures, the notebooks'
findings, and backtests of the signal rule."""
