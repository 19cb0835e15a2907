"""Hand-made sessions for the backtest tests, written with `SessionWriter` (exact by construction).

`lagged_session`: one KXBTC15M-style market (``greater_or_equal``, strike $100,000) whose maker
quotes the strategy's own fair value from ``lag_s`` seconds earlier, ±1 cent, 20 contracts a
side. The replica index ticks once a second and jumps up $40 every 20 s, so after each jump the
stale ask is cheap for ``lag_s`` seconds; the index ends above the strike (YES wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from arbkit.core.events import EventRow, IndexRow, KalshiBookRow, KalshiMarketRow
from arbkit.core.storage import SessionWriter
from arbkit.index.report import BRTI_REPLICA
from arbkit.strategy.signals import BookTop, SignalParams, Strategy

NS = 10**9
E8 = 10**8
T0 = 1_793_577_600 * NS
"""2026-11-02T00:00Z, the market's open."""
STRIKE_E8 = 100_000 * E8
MARKET = "KXBTC15M-26NOV011915-15"
SERIES = "KXBTC15M"
CLOSE_NS = T0 + 15 * 60 * NS
PARAMS = SignalParams(threshold_e4=0, maintenance=None, vol_min_returns=10, max_size=100)
"""The strategy of the tests: no maintenance window, a volatility estimate after 10 s."""


def market_row(recv_ns: int, **changes: Any) -> KalshiMarketRow:
    row = KalshiMarketRow(
        recv_ns=recv_ns,
        ticker=MARKET,
        event_ticker="KXBTC15M-26NOV011915",
        series=SERIES,
        title="BTC up in 15 minutes?",
        strike_type="greater_or_equal",
        floor_strike_e8=STRIKE_E8,
        cap_strike_e8=None,
        open_ns=T0,
        close_ns=CLOSE_NS,
        expiration_ns=CLOSE_NS + 5 * 60 * NS,
        status="active",
        result="",
        expiration_value_e8=None,
    )
    return msgspec.structs.replace(row, **changes) if changes else row


def index_row(recv_ns: int, value_e8: int) -> IndexRow:
    return IndexRow(recv_ns, BRTI_REPLICA, value_e8, None, None, "", "{}", None)


def series_meta(multiplier: str = "1") -> dict[str, Any]:
    """``session.json`` ``series_meta`` as c-pipeline records it (GET /series/{t} body)."""
    body = {"ticker": SERIES, "fee_type": "quadratic", "fee_multiplier": float(multiplier)}
    return {SERIES: {"series": body, "fee_changes": None}}


def index_path(seconds: int, *, jump_every_s: int = 20, jump_e8: int = 40 * E8) -> list[int]:
    """The index each second from T0 − 60 s: flat just under the strike, jumping up."""
    start = STRIKE_E8 - 60 * E8
    return [
        start + ((s - 60) // jump_every_s + 1) * jump_e8 if s >= 60 else start
        for s in range(seconds)
    ]


@dataclass
class Book:
    """The maker's resting orders, written as Kalshi deltas."""

    writer: SessionWriter
    seq: int = 0
    yes: tuple[int, int] | None = None
    no: tuple[int, int] | None = None

    def row(self, t: int, side: str, price: int, qty: int, *, snapshot: bool = False) -> None:
        self.seq += 0 if snapshot and self.seq and side == "no" else 1
        self.writer.write(KalshiBookRow(t, t, MARKET, side, price, qty, snapshot, 1, self.seq, 1))

    def quote(self, t: int, yes_bid: int, yes_ask: int, size_e2: int) -> None:
        """Move the maker's YES bid and YES ask (NO bid 1 − ask)."""
        for side, new in (("yes", (yes_bid, size_e2)), ("no", (10_000 - yes_ask, size_e2))):
            old = getattr(self, side)
            if old == new:
                continue
            if old is not None:
                self.row(t, side, old[0], -old[1])
            self.row(t, side, new[0], new[1])
            setattr(self, side, new)


def fair_values(values: list[int], params: SignalParams = PARAMS) -> list[int | None]:
    """The strategy's own fair value at each second (the maker's reference, before lag)."""
    s = Strategy(params)
    s.market(market_row(T0 - 120 * NS))
    out: list[int | None] = []
    for k, v in enumerate(values):
        t = T0 + (k - 60) * NS
        s.index(t, v)
        s.book(MARKET, BookTop(t, 100, 100, 9_900, 100))
        out.append(s.decide(MARKET, t).fair_e4)
    return out


def lagged_session(
    out: Path,
    name: str = "lagged",
    *,
    lag_s: int = 2,
    seconds_after_close: int = 60,
    meta: Mapping[str, Any] | None = None,
    result: str = "",
    gap_at_s: int | None = None,
) -> Path:
    """Write the lagged-maker session; ``result``: a final market row with Kalshi's result;
    ``seconds_after_close``: how long the recording runs past the close (negative: it stops
    inside the settlement window); ``gap_at_s``: a seq gap on the market just after
    T0 + that many seconds (no snapshot follows)."""
    seconds = 60 + 15 * 60 + seconds_after_close
    values = index_path(seconds)
    fair = fair_values(values)
    w = SessionWriter.create(out, name)
    w.update_meta(series_meta=dict(meta) if meta is not None else series_meta())
    w.write(market_row(T0 - 120 * NS))
    book = Book(w)
    book.row(T0 - 59 * NS, "", 0, 0, snapshot=True)
    for k, v in enumerate(values):
        t = T0 + (k - 60) * NS
        w.write(index_row(t, v))
        ref = fair[k - lag_s] if k >= lag_s else None
        if ref is not None and t < CLOSE_NS:
            bid = max(100, min(9_800, (ref // 100) * 100 - 100))
            book.quote(t + NS // 2, bid, bid + 200, 2_000)
        if gap_at_s is not None and t == T0 + gap_at_s * NS:
            w.write(EventRow(t + 1, "kalshi_ws", 1, "gap", MARKET, "seq gap", 7, 9))
    if result:
        w.write(market_row(CLOSE_NS + 90 * NS, status="finalized", result=result))
    w.close()
    return out / name
