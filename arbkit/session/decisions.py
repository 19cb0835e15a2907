"""The pure `Strategy` fed live from a running `Pipeline`, every decision into ``signals``.

`LiveDecisions` hangs off the pipeline's listeners and feeds the strategy what the pipeline
sees, each value with its receive time: market rows (``kalshi_markets``), Kalshi book tops,
replica ticks, ``GET /exchange/status`` and, once the pipeline has started, each series' fee
metadata as a `FeeSchedule`. It decides

- a market, after its book changed: book rows are written before the feed applies them,
  so changed markets are collected and decided once the frame is through (``call_soon``;
  a burst of frames read in one go is decided once, on the book as it then stands);
- every followed market, on each replica tick (the index moved, time passed).

Each `SignalRow` goes to the session's ``signals`` table and is kept as the market's latest.
"""

from __future__ import annotations

import asyncio
from typing import Any

from arbkit.core.events import KalshiBookRow, KalshiMarketRow, Row, SignalRow
from arbkit.index.live import LiveTick
from arbkit.session.pipeline import Pipeline
from arbkit.strategy.fees import FeeSchedule, FeeType
from arbkit.strategy.signals import BookTop, Decision, Strategy
from arbkit.venues.kalshi.rest import ExchangeStatus


class LiveDecisions:
    """A `Strategy` driven by ``pipeline`` (listeners registered at construction; call
    `load_fees` after the pipeline started)."""

    def __init__(self, pipeline: Pipeline, strategy: Strategy) -> None:
        self.pipeline = pipeline
        self.strategy = strategy
        self.markets: dict[str, KalshiMarketRow] = {}
        """The latest ``kalshi_markets`` row per ticker."""
        self.latest: dict[str, SignalRow] = {}
        """The latest decision per market."""
        self.decisions = 0
        self.buys = 0
        self.tick: LiveTick | None = None
        """The latest replica tick."""
        self.fee_series: list[str] = []
        """Series charged by their own fee metadata (the others: the default schedule)."""
        self._changed: dict[str, int] = {}
        self._valid: dict[str, bool] = {}
        self._scheduled = False
        pipeline.on_row(self._row)
        pipeline.on_book(self._book_row)
        pipeline.on_tick(self._tick)
        pipeline.on_exchange(self._exchange)

    def load_fees(self) -> None:
        """Each series' `FeeSchedule` from the metadata the pipeline fetched at its start.
        A series without usable metadata, or with terms the fee model does not cover (flat
        fee tables), keeps the strategy's default: a listener must not raise mid-feed."""
        for series, entry in self.pipeline.series_meta.items():
            body: Any = entry.get("series")
            if not body:
                continue
            try:
                schedule = FeeSchedule.from_series(body, entry.get("fee_changes"))
            except (KeyError, TypeError, ValueError):
                continue
            if any(terms.fee_type is FeeType.FLAT for terms in schedule.terms):
                continue
            self.strategy.fee_schedule(schedule)
            self.fee_series.append(series)

    # -- inputs ---------------------------------------------------------------------------

    def _row(self, row: Row) -> None:
        if isinstance(row, KalshiMarketRow):
            self.markets[row.ticker] = row
            self.strategy.market(row)

    def _exchange(self, recv_ns: int, status: ExchangeStatus) -> None:
        self.strategy.exchange(recv_ns, trading_active=status.trading_active)

    def _book_row(self, row: KalshiBookRow) -> None:
        self._changed[row.market] = row.recv_ns
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._decide_changed)

    @property
    def pending(self) -> frozenset[str]:
        """Markets whose book changed and whose decision waits for the frame to be through."""
        return frozenset(self._changed)

    def _top(self, market: str, recv_ns: int) -> BookTop:
        book = self.pipeline.feed.books.get(market)
        top = BookTop.from_quote(recv_ns, None if book is None else book.quote())
        self._valid[market] = top.valid
        return top

    def _decide_changed(self) -> None:
        self._scheduled = False
        changed, self._changed = self._changed, {}
        for market, recv_ns in changed.items():
            self.strategy.book(market, self._top(market, recv_ns))
        for market in changed:
            self._decide(market)

    def _tick(self, tick: LiveTick) -> None:
        self.tick = tick
        self.strategy.index(tick.time_ns, tick.result.value_e8)
        self.refresh_validity(tick.time_ns)
        for market in sorted(self.pipeline.feed.markets):
            self._decide(market)

    def refresh_validity(self, now_ns: int) -> None:
        """Feed a new top for each book whose validity changed with no row (a disconnect or
        a detected gap invalidates books; nothing is received for them)."""
        for market, book in self.pipeline.feed.books.items():
            held = self._valid.get(market)
            if held is not None and held != book.valid:
                self.strategy.book(market, self._top(market, max(now_ns, self.strategy.now_ns)))

    # -- decisions ------------------------------------------------------------------------

    def _decide(self, market: str) -> None:
        row = self.strategy.decide(market, self.strategy.now_ns)
        writer = self.pipeline.writer
        if writer is not None:
            writer.write(row)
        self.latest[market] = row
        self.decisions += 1
        if row.decision == Decision.BUY:
            self.buys += 1
