"""Market discovery and rollover: which BTC markets are open right now.

It lists ``GET /markets?series_ticker=S&status=open`` and ``status=unopened`` (all pages) for
each followed series, periodically (default every 30 s), on demand
(`MarketDiscovery.request_refresh`, e.g. after a ``market_lifecycle_v2`` message) and just
after the earliest known open or close. Added, removed and re-termed markets are reported to
a callback, so the WebSocket side can subscribe/unsubscribe and the REST poller follow.

A market counts as live from its ``open_time`` to its ``close_time`` unless listed as no
longer trading: an ``initialized`` market already known from the ``unopened`` listing is
taken live at its open time. That matters because unsigned REST answers come through a CDN
that caches them for ~15 s (reference §2), so a listing made just after a 15-minute close
still shows the successor as unopened. Markets past their close or no longer listed are
dropped; a series whose listing failed keeps what was known until its next good listing.

Every listed market's state goes to the sink as a `KalshiMarketRow` (table ``kalshi_markets``)
when first seen and whenever its status, terms, result or expiration value change; after a
close, the event's closed/settled listings are read until its result appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from arbkit.core.clock import now_ns
from arbkit.core.errors import ArbkitError
from arbkit.core.events import EventRow, KalshiMarketRow
from arbkit.core.sink import Sink
from arbkit.venues.kalshi.markets import BTC_SERIES, Market, settlement_value_from_text
from arbkit.venues.kalshi.rest import STREAM, KalshiRest


@dataclass(frozen=True, slots=True)
class MarketChange:
    """Markets that appeared (full objects) and disappeared (tickers) since the last look,
    and known markets whose terms changed (a 15-minute strike is published just after open)."""

    added: tuple[Market, ...] = ()
    removed: tuple[str, ...] = ()
    updated: tuple[Market, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.updated)


OnChange = Callable[[MarketChange], Awaitable[None] | None]


def _live(m: Market, now: int) -> bool:
    """Trading at ``now``: listed open, or an upcoming market whose open time has come."""
    if now >= m.close_ns:
        return False
    return m.is_open or (m.status == "initialized" and m.open_ns <= now)


def _terms(m: Market) -> tuple[object, ...]:
    """What a contract pays on: a change here is reported as an update."""
    return (m.strike_type, m.floor_strike_e8, m.cap_strike_e8, m.open_ns, m.close_ns)


def market_row(m: Market, recv_ns: int) -> KalshiMarketRow:
    """The recorded state of a market, from its REST fields (never parsed from the ticker)."""
    return KalshiMarketRow(
        recv_ns=recv_ns,
        ticker=m.ticker,
        event_ticker=m.event_ticker,
        series=m.series,
        title=m.title,
        strike_type=m.strike_type.value if m.strike_type is not None else "",
        floor_strike_e8=m.floor_strike_e8,
        cap_strike_e8=m.cap_strike_e8,
        open_ns=m.open_ns,
        close_ns=m.close_ns,
        expiration_ns=m.expected_expiration_ns,
        status=m.status,
        result=m.result,
        expiration_value_e8=settlement_value_from_text(m.expiration_value),
    )


SETTLE_WAIT_S = 3600.0
"""How long after a close discovery keeps looking for the market's result."""

PENDING_TERMS_S = 2.0
"""How soon to list again while a live market's strike is not yet published (a 15-minute
market's strike follows its open; until then its terms are unknown)."""


def _awaits_strike(m: Market) -> bool:
    return m.strike_type is not None and m.floor_strike_e8 is None and m.cap_strike_e8 is None


def _state(m: Market) -> tuple[object, ...]:
    """What a `KalshiMarketRow` records beyond identity: a change here writes a new row."""
    return (*_terms(m), m.title, m.status, m.result, m.expiration_value)


class MarketDiscovery:
    """Keeps `markets` equal to the open markets of ``series``; reports every change.

    ``clock`` (wall-clock ns) decides which markets are past their close; it is the venue's
    time, so a test world running on a shifted clock passes its own. ``horizon`` (seconds)
    limits the live set to markets closing within it: hourly ladders open days ahead, so
    following every open strike of every future hour is rarely wanted. ``recv_clock`` stamps
    the rows written (our receive time: the wall clock, or a generated session's virtual one).
    """

    def __init__(
        self,
        client: KalshiRest,
        series: Iterable[str] = BTC_SERIES,
        *,
        interval: float = 30.0,
        on_change: OnChange | None = None,
        sink: Sink | None = None,
        close_grace: float = 0.5,
        clock: Callable[[], int] = now_ns,
        horizon: float | None = None,
        recv_clock: Callable[[], int] = now_ns,
    ) -> None:
        self.client = client
        self.series = tuple(series)
        self.interval = interval
        self.on_change = on_change
        self.sink: Sink = client.sink if sink is None else sink
        self.close_grace = close_grace
        self._clock = clock
        self._recv_clock = recv_clock
        self.horizon = horizon
        self.markets: dict[str, Market] = {}
        """The live markets, by ticker."""
        self.known: dict[str, Market] = {}
        """Every listed market (open and upcoming) of the last good listing of each series."""
        self._wake = asyncio.Event()
        self._states: dict[str, tuple[object, ...]] = {}
        self._settling: dict[str, int] = {}  # closed event -> its close time, awaiting a result

    async def refresh(self) -> MarketChange:
        """List the markets now, update `markets` and report the change (if any)."""
        known: dict[str, Market] = {}
        for series in self.series:
            try:
                for status in ("open", "unopened"):
                    listed = await self.client.markets(series_ticker=series, status=status)
                    known.update((m.ticker, m) for m in listed)
            except ArbkitError as exc:
                row = EventRow(self._recv_clock(), STREAM, 0, "error", series, str(exc), None, None)
                self.sink.write(row)
                self.sink.count(STREAM, "discovery_errors")
                known.update((t, m) for t, m in self.known.items() if m.series == series)
        self._record_states(known.values())
        now = self._clock()
        for m in (*self.known.values(), *known.values()):
            if m.close_ns <= now and not m.result:
                self._settling.setdefault(m.event_ticker, m.close_ns)
        self.known = {t: m for t, m in known.items() if m.close_ns > now}
        await self._look_for_results(now)
        return await self._update(now)

    async def _look_for_results(self, now: int) -> None:
        """List each closed event's closed and settled markets until a result shows (their
        ``kalshi_markets`` rows then carry result and expiration value), for at most
        `SETTLE_WAIT_S` after its close: one or two requests per closed event and refresh."""
        for event, close_ns in list(self._settling.items()):
            if now - close_ns > SETTLE_WAIT_S * 1e9:
                del self._settling[event]
                continue
            with contextlib.suppress(ArbkitError):
                for status in ("closed", "settled"):
                    listed = await self.client.markets(event_ticker=event, status=status)
                    self._record_states(listed)
                    if listed and all(m.result for m in listed):
                        del self._settling[event]
                        break

    def _record_states(self, markets: Iterable[Market]) -> None:
        recv_ns = self._recv_clock()
        for m in markets:
            state = _state(m)
            if self._states.get(m.ticker) != state:
                self._states[m.ticker] = state
                self.sink.write(market_row(m, recv_ns))

    async def _update(self, now: int) -> MarketChange:
        last_close = now + int(self.horizon * 1e9) if self.horizon is not None else None
        live = {
            t: m
            for t, m in sorted(self.known.items())
            if _live(m, now) and (last_close is None or m.close_ns <= last_close)
        }
        change = MarketChange(
            tuple(m for t, m in live.items() if t not in self.markets),
            tuple(sorted(t for t in self.markets if t not in live)),
            tuple(
                m
                for t, m in live.items()
                if t in self.markets and _terms(m) != _terms(self.markets[t])
            ),
        )
        self.markets = live
        await self._notify(change)
        return change

    async def drop(self, tickers: Iterable[str]) -> MarketChange:
        """Forget markets known to have closed or settled (e.g. from a lifecycle message)."""
        gone = tuple(sorted(t for t in set(tickers) if self.markets.pop(t, None) is not None))
        for t in gone:
            self.known.pop(t, None)
        change = MarketChange(removed=gone)
        await self._notify(change)
        return change

    def request_refresh(self) -> None:
        """Make `run` list the markets again now instead of at its next scheduled time."""
        self._wake.set()

    def next_delay(self) -> float:
        """Seconds until the next scheduled listing: the interval, or just after an open/close."""
        now = self._clock()
        edges = [m.close_ns for m in self.known.values()]
        edges += [m.open_ns for m in self.known.values() if m.open_ns > now]
        delay = self.interval
        if edges:
            delay = min(delay, (min(edges) - now) / 1e9 + self.close_grace)
        if any(_awaits_strike(m) for m in self.markets.values()):
            delay = min(delay, PENDING_TERMS_S)
        return max(delay, 0.0)

    async def run(self) -> None:
        """Refresh forever (until cancelled): periodically, after closes, and on request."""
        while True:
            self._wake.clear()
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.next_delay())

    async def _notify(self, change: MarketChange) -> None:
        if change and self.on_change is not None:
            result = self.on_change(change)
            if inspect.isawaitable(result):
                await result
