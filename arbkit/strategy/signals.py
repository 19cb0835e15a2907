"""The trading decision: a pure `Strategy` fed timestamped values, deciding "as of" a time.

`Strategy` holds the latest of each input with its ``recv_ns`` — index values, Kalshi book tops
(`BookTop`), market metadata rows (`MarketInfo`, the ``kalshi_markets`` row of INTERFACES §1),
the exchange status (``GET /exchange/status`` ``trading_active``) — and `Strategy.decide`
returns one `SignalRow` (table ``signals``) with every input it used. No I/O, no wall clock:
live, replay and backtest feed the same object the same values and get the same rows.

Rules, in the order they are checked (the first that fails is the row's `Reason`): the market
is known, open (status ``active``/``open``, ``open_ns ≤ t < close_ns``) and of a priced strike
type with its strike published; at least `SignalParams.min_time_to_close_s` to close; trading
not paused (``trading_active`` false, or Kalshi's weekly maintenance, Thursday 03:00–05:00 ET,
kalshi-api.md §3.1); an index value no older than ``max_index_age_s``; a volatility estimate;
a valid, uncrossed book no older than ``max_book_age_s``. Then buy YES when
``fair − YES ask − fee per contract ≥ threshold``, or NO when ``YES bid − fair − fee ≥
threshold`` (NO ask = 1 − best YES bid, NO fair = 1 − fair), the size the displayed depth at
that price allows, up to ``max_size``; fees from the series' `FeeSchedule` for that size.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from arbkit.core.events import IndexRow, SignalRow
from arbkit.core.fixed import KALSHI_PRICE_SCALE, KALSHI_QTY_SCALE
from arbkit.index.report import BRTI_REPLICA
from arbkit.strategy.fairvalue import SECOND_NS, WINDOW_S, EwmaVol, StrikeType, prob_yes
from arbkit.strategy.fees import FeeSchedule, FeeTerms, FeeType, Role

ONE_E4 = KALSHI_PRICE_SCALE
_MINUTE_NS = 60 * SECOND_NS
OPEN_STATUSES = frozenset({"active", "open"})
"""Kalshi market status strings under which orders are accepted."""


class Decision(StrEnum):
    BUY = "buy"
    NONE = "none"


class Side(StrEnum):
    YES = "yes"
    NO = "no"
    NONE = ""


class Reason(StrEnum):
    """Why a decision is not to trade (``""`` when it trades)."""

    TRADE = ""
    NO_MARKET = "no_market"
    MARKET_NOT_OPEN = "market_not_open"
    UNSUPPORTED_STRIKE = "unsupported_strike"
    NO_STRIKE = "no_strike"
    TOO_CLOSE = "too_close_to_close"
    TRADING_PAUSED = "trading_paused"
    MAINTENANCE = "maintenance"
    NO_INDEX = "no_index"
    INDEX_INVALID = "index_invalid"
    INDEX_STALE = "index_stale"
    NO_VOL = "no_vol"
    NO_BOOK = "no_book"
    BOOK_INVALID = "book_invalid"
    BOOK_CROSSED = "book_crossed"
    BOOK_STALE = "book_stale"
    NO_DEPTH = "no_depth"
    NO_EDGE = "no_edge"


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Kalshi's weekly trading pause (kalshi-api.md §3.1: Thursday 03:00–05:00 ET); ``start``
    and ``end`` are local wall-clock times on whole minutes."""

    weekday: int = 3
    start: dt.time = dt.time(3, 0)
    end: dt.time = dt.time(5, 0)
    tz: str = "America/New_York"

    def contains(self, time_ns: int) -> bool:
        """Whether ``time_ns`` falls in the window (decided per whole minute, cached)."""
        return self._minute(time_ns // _MINUTE_NS)

    @lru_cache(maxsize=8)  # noqa: B019 - frozen and hashable; a few minutes are live at once
    def _minute(self, minute: int) -> bool:
        local = dt.datetime.fromtimestamp(minute * 60, ZoneInfo(self.tz))
        return local.weekday() == self.weekday and self.start <= local.time() < self.end


@dataclass(frozen=True, slots=True)
class SignalParams:
    """Every knob of the decision. Money in ``*_e4``, times in seconds."""

    threshold_e4: int = 200
    """Minimum edge after fees per contract ($0.02)."""
    min_time_to_close_s: float = 5.0
    max_index_age_s: float = 2.0
    max_book_age_s: float = 30.0
    max_size: int = 100
    """Contracts per decision at most."""
    vol_half_life_s: float = 300.0
    vol_min_returns: int = 30
    vol_floor: float = 1e-10
    """Per-second log variance floor (a flat index does not make markets certain)."""
    maintenance: MaintenanceWindow | None = field(default_factory=MaintenanceWindow)
    """None: no scheduled pause (e.g. the embedded world)."""
    window_s: int = WINDOW_S
    history_s: int = 180
    """One-second index values kept (at least the settlement window)."""


class MarketInfo(Protocol):
    """The fields of a ``kalshi_markets`` row (INTERFACES §1) the strategy reads."""

    @property
    def recv_ns(self) -> int: ...
    @property
    def ticker(self) -> str: ...
    @property
    def series(self) -> str: ...
    @property
    def strike_type(self) -> str: ...
    @property
    def floor_strike_e8(self) -> int | None: ...
    @property
    def cap_strike_e8(self) -> int | None: ...
    @property
    def open_ns(self) -> int | None: ...
    @property
    def close_ns(self) -> int | None: ...
    @property
    def status(self) -> str: ...


class QuoteLike(Protocol):
    """The top-of-book fields of ``arbkit.venues.kalshi.book.KalshiQuote``."""

    @property
    def yes_bid_e4(self) -> int | None: ...
    @property
    def yes_bid_qty_e2(self) -> int | None: ...
    @property
    def yes_ask_e4(self) -> int | None: ...
    @property
    def yes_ask_qty_e2(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class BookTop:
    """Top of one Kalshi book on the YES scale as received at ``recv_ns`` (a side without
    orders is None; ``valid`` False while the feed cannot vouch for the book)."""

    recv_ns: int
    yes_bid_e4: int | None
    yes_bid_size_e2: int | None
    yes_ask_e4: int | None
    yes_ask_size_e2: int | None
    valid: bool = True

    @classmethod
    def from_quote(cls, recv_ns: int, quote: QuoteLike | None) -> BookTop:
        """From a `KalshiBook.quote()` (``arbkit.venues.kalshi.book``); None (the book cannot
        be read) gives an invalid top."""
        if quote is None:
            return cls(recv_ns, None, None, None, None, valid=False)
        return cls(
            recv_ns, quote.yes_bid_e4, quote.yes_bid_qty_e2, quote.yes_ask_e4, quote.yes_ask_qty_e2
        )

    @property
    def crossed(self) -> bool:
        """YES bid at or above the YES ask: such orders would have matched."""
        bid, ask = self.yes_bid_e4, self.yes_ask_e4
        return bid is not None and ask is not None and bid >= ask


DEFAULT_FEES = FeeSchedule("", (FeeTerms(FeeType.QUADRATIC, Fraction(1)),))
"""The fees of a series without a schedule given: KXBTC15M's (quadratic × 1, §5), the
rounding rule by date."""


class Strategy:
    """The decision state of one strategy instance: feed it values in ``recv_ns`` order (each
    input method takes the time it was received) and ask `decide` for a market's decision as
    of a time at or after the last input. Pure: the same inputs in the same order give the
    same rows, and an input received after t cannot change a decision taken at t.

    ``fees`` maps a series ticker to its `FeeSchedule` (`fees.FeeSchedule.from_series`);
    series without one are charged `DEFAULT_FEES`.
    """

    def __init__(
        self, params: SignalParams | None = None, *, fees: Mapping[str, FeeSchedule] | None = None
    ) -> None:
        self.params = params = params or SignalParams()
        self.fees: dict[str, FeeSchedule] = dict(fees or {})
        self.now_ns = 0
        self.vol = EwmaVol(
            half_life_s=params.vol_half_life_s,
            min_returns=params.vol_min_returns,
            min_var=params.vol_floor,
        )
        self.trading_active = True
        self._index: tuple[int, int | None] | None = None
        self._seconds: dict[int, int] = {}
        self._order: deque[int] = deque()
        self._current: tuple[int, int] | None = None
        self._books: dict[str, BookTop] = {}
        self._markets: dict[str, MarketInfo] = {}

    # -- inputs ---------------------------------------------------------------------------

    def _at(self, recv_ns: int) -> None:
        if recv_ns > self.now_ns:
            self.now_ns = recv_ns

    def index(self, recv_ns: int, value_e8: int | None) -> None:
        """An index (replica) value calculated at ``recv_ns``; None: no value this tick.
        Live: ``index(tick.time_ns, tick.result.value_e8)`` for each `IndexEngine` tick."""
        self._at(recv_ns)
        self._index = (recv_ns, value_e8)
        if value_e8 is None:
            return
        key = -(-recv_ns // SECOND_NS) * SECOND_NS
        current = self._current
        if current is not None and key > current[0]:
            self._finish(*current)
        self._current = (key, value_e8)

    def index_row(self, row: IndexRow) -> None:
        """A recorded ``index`` row (replay): only the BRTI replica's rows count."""
        if row.method == BRTI_REPLICA:
            self.index(row.recv_ns, row.value_e8)

    def _finish(self, second_ns: int, value_e8: int) -> None:
        """Second ``second_ns`` is over: its one-second value is final."""
        self._seconds[second_ns] = value_e8
        self._order.append(second_ns)
        self.vol.update(second_ns, value_e8)
        horizon = second_ns - self.params.history_s * SECOND_NS
        while self._order and self._order[0] < horizon:
            del self._seconds[self._order.popleft()]

    def book(self, market: str, top: BookTop) -> None:
        """A Kalshi book top (after every change, and again whenever the feed vouches for it)."""
        self._at(top.recv_ns)
        self._books[market] = top

    def market(self, row: MarketInfo) -> None:
        """A market metadata row (``kalshi_markets``); the latest per ticker counts."""
        self._at(row.recv_ns)
        self._markets[row.ticker] = row

    def exchange(self, recv_ns: int, *, trading_active: bool) -> None:
        """``GET /exchange/status`` as received: ``trading_active`` false pauses everything."""
        self._at(recv_ns)
        self.trading_active = trading_active

    def fee_schedule(self, schedule: FeeSchedule) -> None:
        self.fees[schedule.series] = schedule

    # -- the decision ---------------------------------------------------------------------

    def _window(self, close_ns: int, now_ns: int) -> tuple[int, int]:
        """Sum and count of the one-second values of the window seconds ``s ≤ now``."""
        total = count = 0
        seconds, current = self._seconds, self._current
        start = close_ns - self.params.window_s * SECOND_NS
        for s in range(start, min(close_ns, now_ns + 1), SECOND_NS):
            value = seconds.get(s)
            if value is None and current is not None and current[0] == s:
                value = current[1]
            if value is not None:
                total += value
                count += 1
        return total, count

    def decide_all(self, recv_ns: int) -> list[SignalRow]:
        """`decide` for every market a metadata row was fed for, in ticker order."""
        return [self.decide(m, recv_ns) for m in sorted(self._markets)]

    def decide(self, market: str, recv_ns: int) -> SignalRow:
        """The decision on ``market`` as of ``recv_ns`` (not before the last input)."""
        if recv_ns < self.now_ns:
            msg = (
                f"a decision as of {recv_ns} ns comes before inputs already fed "
                f"(up to {self.now_ns} ns); decide at or after the last input"
            )
            raise ValueError(msg)
        p = self.params
        info = self._markets.get(market)
        top = self._books.get(market)
        index = self._index
        variance = self.vol.variance
        vol = None if variance is None else variance**0.5
        series = "" if info is None else info.series
        index_e8 = None if index is None else index[1]
        index_age = None if index is None else recv_ns - index[0]
        close_ns = None if info is None else info.close_ns
        to_close = None if close_ns is None else close_ns - recv_ns
        observed = 0
        fair = fee = edge = None
        side, size = Side.NONE, 0

        def row(reason: Reason) -> SignalRow:
            trades = reason is Reason.TRADE
            return SignalRow(
                recv_ns=recv_ns,
                market=market,
                series=series,
                decision=Decision.BUY if trades else Decision.NONE,
                side=side,
                size=size if trades else 0,
                reason=reason,
                index_e8=index_e8,
                index_age_ns=index_age,
                vol_per_s=vol,
                time_to_close_ns=to_close,
                window_observed=observed,
                yes_bid_e4=None if top is None else top.yes_bid_e4,
                yes_bid_size_e2=None if top is None else top.yes_bid_size_e2,
                yes_ask_e4=None if top is None else top.yes_ask_e4,
                yes_ask_size_e2=None if top is None else top.yes_ask_size_e2,
                book_age_ns=None if top is None else recv_ns - top.recv_ns,
                book_valid=None if top is None else top.valid,
                fair_e4=fair,
                fee_e4=fee,
                edge_e4=edge,
            )

        if info is None:
            return row(Reason.NO_MARKET)
        if (
            info.status not in OPEN_STATUSES
            or close_ns is None
            or recv_ns >= close_ns
            or (info.open_ns is not None and recv_ns < info.open_ns)
        ):
            return row(Reason.MARKET_NOT_OPEN)
        try:
            strike = StrikeType(info.strike_type)
        except ValueError:
            return row(Reason.UNSUPPORTED_STRIKE)
        needs_floor = strike not in (StrikeType.LESS, StrikeType.LESS_OR_EQUAL)
        needs_cap = strike in (StrikeType.LESS, StrikeType.LESS_OR_EQUAL, StrikeType.BETWEEN)
        if (needs_floor and info.floor_strike_e8 is None) or (
            needs_cap and info.cap_strike_e8 is None
        ):
            return row(Reason.NO_STRIKE)
        if to_close is not None and to_close < p.min_time_to_close_s * SECOND_NS:
            return row(Reason.TOO_CLOSE)
        if not self.trading_active:
            return row(Reason.TRADING_PAUSED)
        if p.maintenance is not None and p.maintenance.contains(recv_ns):
            return row(Reason.MAINTENANCE)
        if index is None or index_age is None:
            return row(Reason.NO_INDEX)
        if index_e8 is None or index_e8 <= 0:
            return row(Reason.INDEX_INVALID)
        if index_age > p.max_index_age_s * SECOND_NS:
            return row(Reason.INDEX_STALE)
        if variance is None:
            return row(Reason.NO_VOL)
        if top is None:
            return row(Reason.NO_BOOK)
        if not top.valid:
            return row(Reason.BOOK_INVALID)
        if top.crossed:
            return row(Reason.BOOK_CROSSED)
        if recv_ns - top.recv_ns > p.max_book_age_s * SECOND_NS:
            return row(Reason.BOOK_STALE)
        total, observed = self._window(close_ns, recv_ns)
        prob = prob_yes(
            strike,
            info.floor_strike_e8,
            info.cap_strike_e8,
            value_e8=index_e8,
            var_per_s=variance,
            now_ns=recv_ns,
            close_ns=close_ns,
            observed_sum_e8=total,
            observed_count=observed,
            window_s=p.window_s,
        )
        fair = round(prob * ONE_E4)
        schedule = self.fees.get(series, DEFAULT_FEES)
        best: tuple[int, Side, int, int] | None = None
        # Buy YES at the YES ask (depth: the NO bids behind it); buy NO at 1 − YES bid.
        for s, ask, depth_e2, value in (
            (Side.YES, top.yes_ask_e4, top.yes_ask_size_e2, fair),
            (
                Side.NO,
                None if top.yes_bid_e4 is None else ONE_E4 - top.yes_bid_e4,
                top.yes_bid_size_e2,
                ONE_E4 - fair,
            ),
        ):
            if ask is None or depth_e2 is None:
                continue
            n = min(p.max_size, depth_e2 // KALSHI_QTY_SCALE)
            if n < 1:
                continue
            f = schedule.fee_e4(ask, n, recv_ns, role=Role.TAKER)
            e = value - ask - -(-f // n)
            if best is None or e > best[0]:
                best = (e, s, n, f)
        if best is None:
            return row(Reason.NO_DEPTH)
        edge, side, size, fee = best
        return row(Reason.TRADE if edge >= p.threshold_e4 else Reason.NO_EDGE)
