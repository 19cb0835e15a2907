"""The embedded Kalshi exchange as plain state: markets, true books, makers, settlement.

Sans-I/O: `Exchange.step(now_ns)` advances the world to ``now_ns`` and returns the events
that happened (book changes, trades, lifecycle transitions, index ticks); the server turns
them into wire frames. Lifecycle per reference §4.1/§6: ``initialized`` → ``active`` (at
open; a 15-minute market learns its strike, the 60 s index average before open) →
``closed`` (at close; resting orders are cancelled, so the book empties) → ``determined``
(result from the 60 s average before close) → ``finalized``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from arbkit.sim.kalshi.makers import ONE_E4, Book, Change, Quoter, fair_yes
from arbkit.sim.kalshi.markets import (
    NS,
    SERIES_15M,
    IndexTape,
    Market,
    Schedule,
    dollars_text,
)

DETERMINE_AFTER_NS = 2 * NS
FINALIZE_AFTER_NS = 6 * NS
RETAIN_NS = 1800 * NS


@dataclass(slots=True)
class BookEvent:
    ticker: str
    market_id: str
    side: str
    price_e4: int
    delta_e2: int
    ts_ns: int


@dataclass(slots=True)
class TradeEvent:
    ticker: str
    trade_id: str
    yes_price_e4: int
    count_e2: int
    taker_side: str
    ts_ns: int


@dataclass(slots=True)
class TickerEvent:
    ticker: str
    ts_ns: int


@dataclass(slots=True)
class EventCreated:
    """A new event (one ``event_lifecycle`` message precedes its markets' ``created``)."""

    market: Market
    ts_ns: int


@dataclass(slots=True)
class LifecycleEvent:
    ticker: str
    event_type: str
    ts_ns: int


@dataclass(slots=True)
class Average:
    """A window average of index ticks: value in 1e-8 units, ticks counted, window bounds (ms)."""

    value_e8: int
    size: int
    start_ms: int
    end_ms: int


@dataclass(slots=True)
class IndexEvent:
    """One BRTI tick at whole second ``sec`` (reference §6 ``cfbenchmarks_value``)."""

    sec: int
    value_e2: int
    avg_60s: Average
    settle_avg: Average | None
    ts_ns: int


Event = BookEvent | TradeEvent | TickerEvent | LifecycleEvent | EventCreated | IndexEvent


def _average(vals: list[int], start_ms: int, end_ms: int) -> Average:
    n = len(vals)
    return Average((2 * sum(vals) * 1_000_000 + n) // (2 * n), n, start_ms, end_ms)


class Exchange:
    """All markets of the world and their true books; deterministic for a seed and clock."""

    def __init__(
        self,
        tape: IndexTape,
        *,
        seed: int,
        legacy_grid: bool,
        lag_s: float,
        noise: float,
        update_hz: float,
        trade_hz: float,
        annual_vol: float,
        ladder: int,
    ) -> None:
        self.tape = tape
        self.rng = random.Random(seed)
        self.legacy_grid = legacy_grid
        self.lag_s = lag_s
        self.noise = noise
        self.update_hz = update_hz
        self.trade_hz = trade_hz
        self.annual_vol = annual_vol
        self.schedule = Schedule(tape, self.rng, ladder=ladder, tapered=not legacy_grid)
        self.markets: dict[str, Market] = {}
        self.books: dict[str, Book] = {}
        self.quoters: dict[str, Quoter] = {}
        self.paused = False
        self._sizes = [self.rng.randint(1, 400) * 100 for _ in range(4096)]
        self._burst_k = 0
        self._last_ns = 0
        self._last_sec: int | None = None

    def top(self, ticker: str) -> tuple[int, int, int, int]:
        """(yes_bid_e4, yes_bid_size_e2, yes_ask_e4, yes_ask_size_e2); empty sides 0 / 1.0000."""
        book = self.books[ticker]
        bid = max(book.yes, default=0)
        no_bid = max(book.no, default=0)
        return bid, book.yes.get(bid, 0), ONE_E4 - no_bid, book.no.get(no_bid, 0)

    def ready(self) -> bool:
        """Every series of the schedule has an open market and every open market is quoted."""
        open_series = {m.series for m in self.markets.values() if m.status == "active"}
        quoted = all(
            q.lagged is not None
            for t, q in self.quoters.items()
            if self.markets[t].status == "active"
        )
        return quoted and open_series >= set(self.schedule.series)

    def step(self, now_ns: int) -> list[Event]:
        """Advance to ``now_ns``; the events, in the order they happened."""
        out: list[Event] = []
        dt = (now_ns - self._last_ns) / NS if self._last_ns else 0.0
        self._last_ns = now_ns
        self._index_ticks(now_ns, out)
        if self.paused:
            return out
        events_seen: set[str] = set()
        for m in self.schedule.due(now_ns):
            if m.event_ticker not in events_seen:
                events_seen.add(m.event_ticker)
                out.append(EventCreated(m, now_ns))
            self.markets[m.ticker] = m
            self.books[m.ticker] = Book()
            out.append(LifecycleEvent(m.ticker, "created", now_ns))
        for m in list(self.markets.values()):
            self._advance(m, now_ns, out)
        self._make(now_ns, min(dt, 1.0), out)
        return out

    def _index_ticks(self, now_ns: int, out: list[Event]) -> None:
        sec = now_ns // NS
        first = sec if self._last_sec is None else max(self._last_sec + 1, sec - 4)
        self._last_sec = sec
        for s in range(first, sec + 1):
            v = self.tape.value_e2(s)
            if v is None:
                continue
            prior = self.tape.window(s) or [v]
            avg = _average(prior, (s - 60) * 1000, s * 1000)
            close = (s // 900 + 1) * 900
            settle = None
            if s >= close - 60:
                vals = [x for x in (self.tape.value_e2(t) for t in range(close - 60, s + 1)) if x]
                settle = _average(vals, (close - 60) * 1000, (s + 1) * 1000)
            out.append(IndexEvent(s, v, avg, settle, now_ns))

    def _advance(self, m: Market, now_ns: int, out: list[Event]) -> None:
        if m.status == "initialized" and now_ns >= m.open_ns:
            if m.series == SERIES_15M:
                # No index before open (a world that just started): the value now stands in.
                strike = self.tape.average_e2(m.open_ns) or self.tape.value_e2(now_ns // NS)
                if strike is None:
                    return
                m.floor_e2 = strike
                m.yes_sub_title = f"Target Price: {dollars_text(strike)}"
            m.status = "active"
            m.updated_ns = now_ns
            self.quoters[m.ticker] = Quoter(
                self.rng,
                tapered=m.tapered,
                fractional=not self.legacy_grid,
                lag_s=self.lag_s,
                noise=self.noise,
            )
            out.append(LifecycleEvent(m.ticker, "activated", now_ns))
            if m.series == SERIES_15M:
                out.append(LifecycleEvent(m.ticker, "metadata_updated", now_ns))
        if m.status == "active" and now_ns >= m.close_ns:
            m.status = "closed"
            m.updated_ns = now_ns
            self.quoters.pop(m.ticker, None)
            book = self.books[m.ticker]
            for side in ("yes", "no"):
                for price, qty in sorted(book.side(side).items()):
                    out.append(BookEvent(m.ticker, m.market_id, side, price, -qty, now_ns))
            book.yes.clear()
            book.no.clear()
            out.append(TickerEvent(m.ticker, now_ns))
        if m.status == "closed" and now_ns >= m.close_ns + DETERMINE_AFTER_NS:
            value = self.tape.average_e2(m.close_ns) or self.tape.value_e2(now_ns // NS)
            if value is None:
                return
            m.expiration_e2 = value
            m.result = "yes" if m.settles_yes(value) else "no"
            m.status = "determined"
            m.determined_ns = m.updated_ns = now_ns
            out.append(LifecycleEvent(m.ticker, "determined", now_ns))
        if m.status == "determined" and now_ns >= m.close_ns + FINALIZE_AFTER_NS:
            m.status = "finalized"
            m.settled_ns = m.updated_ns = now_ns
            out.append(LifecycleEvent(m.ticker, "settled", now_ns))
        if m.status == "finalized" and now_ns >= m.close_ns + RETAIN_NS:
            del self.markets[m.ticker]
            del self.books[m.ticker]

    def _emit(self, m: Market, changes: list[Change], now_ns: int, out: list[Event]) -> None:
        out.extend(BookEvent(m.ticker, m.market_id, s, p, d, now_ns) for s, p, d in changes)

    def _make(self, now_ns: int, dt: float, out: list[Event]) -> None:
        index_e2 = self.tape.value_e2(now_ns // NS)
        if index_e2 is None:
            return
        for ticker, quoter in self.quoters.items():
            m = self.markets[ticker]
            book = self.books[ticker]
            before = self.top(ticker)
            if quoter.lagged is None or self.rng.random() < self.update_hz * dt:
                fair = fair_yes(m, index_e2, now_ns, self.annual_vol)
                if fair is not None:
                    self._emit(m, quoter.requote(book, fair, now_ns), now_ns, out)
            traded = False
            if self.rng.random() < self.trade_hz * dt:
                taken = quoter.take(book)
                if taken is not None:
                    change, yes_price, taker_side = taken
                    self._emit(m, [change], now_ns, out)
                    count = -change[2]
                    m.volume_e2 += count
                    m.open_interest_e2 += count
                    m.dollar_volume_e6 += count * yes_price
                    m.last_price_e4, m.last_trade_e2 = yes_price, count
                    trade_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                    out.append(TradeEvent(ticker, trade_id, yes_price, count, taker_side, now_ns))
                    traded = True
            if traded or self.top(ticker) != before:
                out.append(TickerEvent(ticker, now_ns))

    def burst(self, tickers: list[str], n: int, now_ns: int) -> list[BookEvent]:
        """``n`` size changes on existing levels of ``tickers``, round robin (high-rate mode).

        Sizes come from a seeded table and levels are never added or removed, so a burst is
        cheap (no allocation beyond the events) and every change stays exact.
        """
        out: list[BookEvent] = []
        slots: list[tuple[str, str, dict[int, int], int]] = []
        for t in tickers:
            if t in self.quoters:
                book, mid = self.books[t], self.markets[t].market_id
                slots += [(t, mid, book.yes, p) for p in book.yes]
                slots += [(t, mid, book.no, p) for p in book.no]
        if not slots:
            return out
        sizes, k, nslots = self._sizes, self._burst_k, len(slots)
        append = out.append
        for _ in range(n):
            k += 1
            t, mid, levels, price = slots[k % nslots]
            qty = sizes[k & 4095]
            delta = qty - levels[price]
            if delta:
                levels[price] = qty
                side = "yes" if levels is self.books[t].yes else "no"
                append(BookEvent(t, mid, side, price, delta, now_ns))
        self._burst_k = k
        return out
