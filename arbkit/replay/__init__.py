"""Replay of recorded sessions: raw frames back through the parsers, books, top of book and
tables."""
