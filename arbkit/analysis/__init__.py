"""Analyses of recorded sessions: latency (REST vs WebSocket), and their figures."""
