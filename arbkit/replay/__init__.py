"""Replay of recorded sessions: raw frames back through the parsers, books, and tables."""
