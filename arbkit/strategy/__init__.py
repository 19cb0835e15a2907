"""The strategy layer: fees, fair value and the trading decision, pure (no I/O, no clock).

`fees` computes Kalshi's fees from a series' metadata; `fairvalue` prices a market's P(YES)
from the index, time to close and an online volatility estimate; `signals` holds the
`Strategy` that live monitoring, replay and backtests feed alike.
"""
