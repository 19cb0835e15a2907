"""Replay: recorded sessions read back as books, top of book and frames."""
