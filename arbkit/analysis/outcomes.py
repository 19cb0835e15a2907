"""How each market settled, from what the session recorded, and which source said so.

In order of preference: the result Kalshi published (``kalshi_markets.result``); Kalshi's
expiration value (``expiration_value_e8``) against the strike; the 60-s average before close
of the official index as Kalshi relayed it (``kalshi_cf_index``); the same average of the
replica (``index``, method ``brti_replica``). The average is `arbkit.index.settlement`'s
(one-second values, rounded to the cent) and the strike rule the market's ``strike_type``
(fair value's reading, `arbkit.strategy.fairvalue`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from arbkit.core.fixed import KALSHI_PRICE_SCALE
from arbkit.index.settlement import SECOND_NS, one_second_values, settlement_average
from arbkit.strategy.fairvalue import StrikeType


class SettlementSource(StrEnum):
    RESULT = "result"
    EXPIRATION_VALUE = "expiration_value"
    OFFICIAL_INDEX = "official_index"
    REPLICA_INDEX = "replica_index"
    NONE = "unsettled"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A market's settlement: YES pays ``yes_e4`` ($1 or $0; None unsettled)."""

    market: str
    yes_e4: int | None
    source: SettlementSource
    value_e8: int | None
    at_ns: int | None


def yes_wins(strike_type: str, floor_e8: int | None, cap_e8: int | None, value_e8: int) -> bool:
    """Whether a settlement value makes YES win, by the market's strike rule."""
    st = StrikeType(strike_type)
    if st is StrikeType.GREATER_OR_EQUAL:
        return floor_e8 is not None and value_e8 >= floor_e8
    if st is StrikeType.GREATER:
        return floor_e8 is not None and value_e8 > floor_e8
    if st is StrikeType.LESS:
        return cap_e8 is not None and value_e8 < cap_e8
    if st is StrikeType.LESS_OR_EQUAL:
        return cap_e8 is not None and value_e8 <= cap_e8
    return floor_e8 is not None and cap_e8 is not None and floor_e8 <= value_e8 <= cap_e8


MIN_SECONDS = 55
"""One-second values a recorded window needs (of 60) to settle a market by it: a session that
ends, or a feed that stops, inside the window does not settle it."""


def _average(values: Mapping[int, int], close_ns: int) -> int | None:
    at = -(-close_ns // SECOND_NS) * SECOND_NS
    s = settlement_average(values, at)
    return s.value_e8 if s.count >= MIN_SECONDS else None


def outcomes(
    markets: pl.DataFrame, official: pl.DataFrame, replica: pl.DataFrame
) -> dict[str, Outcome]:
    """Every market's outcome. ``markets``: ``kalshi_markets`` rows (the last per ticker
    counts); ``official``: ``kalshi_cf_index`` (``recv_ns``, ``source_ns``, ``value_e8``);
    ``replica``: the replica's ``index`` rows (``recv_ns``, ``value_e8``)."""
    official_values = one_second_values(
        official.select(pl.coalesce("source_ns", "recv_ns"), "value_e8").sort("source_ns").rows()
    )
    replica_values = one_second_values(replica.select("recv_ns", "value_e8").sort("recv_ns").rows())
    last = markets.sort("recv_ns").group_by("ticker", maintain_order=True).last()
    out: dict[str, Outcome] = {}
    for m in last.iter_rows(named=True):
        ticker, close_ns = m["ticker"], m["close_ns"]
        floor, cap = m["floor_strike_e8"], m["cap_strike_e8"]
        if m["result"] in ("yes", "no"):
            yes = KALSHI_PRICE_SCALE if m["result"] == "yes" else 0
            out[ticker] = Outcome(ticker, yes, SettlementSource.RESULT, None, close_ns)
            continue
        found: tuple[SettlementSource, int | None] = (SettlementSource.NONE, None)
        if m["expiration_value_e8"] is not None:
            found = (SettlementSource.EXPIRATION_VALUE, m["expiration_value_e8"])
        elif close_ns is not None:
            for source, values in (
                (SettlementSource.OFFICIAL_INDEX, official_values),
                (SettlementSource.REPLICA_INDEX, replica_values),
            ):
                value = _average(values, close_ns)
                if value is not None:
                    found = (source, value)
                    break
        source, value = found
        yes_e4 = None
        if value is not None:
            try:
                yes_e4 = KALSHI_PRICE_SCALE if yes_wins(m["strike_type"], floor, cap, value) else 0
            except ValueError:
                source = SettlementSource.NONE
        out[ticker] = Outcome(ticker, yes_e4, source, value, close_ns)
    return out
