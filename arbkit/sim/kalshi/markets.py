"""Kalshi BTC series of the embedded world: schedule, tickers, strikes and settlement rules.

Follows reference/kalshi-api.md §6 (tickers and rules as observed live in 2026): event and
market tickers carry the **close** time in US Eastern (America/New_York, DST-correct),
``KXBTC15M-{YY}{MON}{DD}{HHMM}-{MM}`` every 15 minutes (strike ``greater_or_equal`` = 60 s
BRTI average before open), ``KXBTCD-{YY}{MON}{DD}{HH}-T{strike}`` hourly ladders at
``…99.99`` (``greater``) and ``KXBTC-{YY}{MON}{DD}{HH}-B{mid}`` range buckets (``between``).
Every value here is exact: index values and strikes are integer cents (``*_e2``).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from arbkit.core.fixed import format_fixed

ET = ZoneInfo("America/New_York")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
NS = 1_000_000_000
QUARTER_NS = 900 * NS
HOUR_NS = 3600 * NS

SERIES_15M = "KXBTC15M"
SERIES_HOURLY = "KXBTCD"
SERIES_RANGE = "KXBTC"


@dataclass(frozen=True)
class Series:
    """The static ``/series/{ticker}`` facts of one series."""

    ticker: str
    frequency: str
    title: str
    tags: tuple[str, ...]
    terms_pdf: str
    fee_type: str = "quadratic"
    fee_multiplier: float = 1.0


SERIES: dict[str, Series] = {
    SERIES_15M: Series(
        SERIES_15M, "fifteen_min", "Bitcoin price up down", ("BTC", "15 min"), "CRYPTO15M.pdf"
    ),
    SERIES_HOURLY: Series(
        SERIES_HOURLY, "hourly", "Bitcoin price Above/below", ("BTC",), "BTC.pdf"
    ),
    SERIES_RANGE: Series(SERIES_RANGE, "hourly", "Bitcoin price range", ("BTC",), "BTC.pdf"),
}


@dataclass(frozen=True)
class FeeChange:
    """A scheduled fee change of a series (``GET /series/fee_changes``)."""

    id: str
    series_ticker: str
    fee_type: str
    fee_multiplier: float
    scheduled_ns: int


MAINTENANCE_WEEKDAY = 3  # Thursday
MAINTENANCE_HOURS_ET = (3, 5)
"""Kalshi's weekly maintenance: Thursday 03:00-05:00 US Eastern, trading paused
(reference §3.1, doc maintenance_and_pauses)."""


def maintenance_end_ns(ns: int) -> int | None:
    """When the weekly maintenance window that ``ns`` falls in ends; None outside it."""
    t = datetime.fromtimestamp(ns / NS, UTC).astimezone(ET)
    start, end = MAINTENANCE_HOURS_ET
    if t.weekday() != MAINTENANCE_WEEKDAY or not start <= t.hour < end:
        return None
    resume = t.replace(hour=end, minute=0, second=0, microsecond=0)
    return int(resume.timestamp()) * NS


def event_code(close_ns: int, *, minute: bool) -> str:
    """``26JUL232045`` (with minutes) or ``26AUG2317`` for a close instant, in US Eastern time."""
    t = datetime.fromtimestamp(close_ns / NS, UTC).astimezone(ET)
    code = f"{t.year % 100:02d}{_MONTHS[t.month - 1]}{t.day:02d}{t.hour:02d}"
    return code + f"{t.minute:02d}" if minute else code


def et_clock(ns: int) -> str:
    """``8:45 PM EDT`` — the way rules texts name an instant."""
    t = datetime.fromtimestamp(ns / NS, UTC).astimezone(ET)
    return f"{(t.hour % 12) or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'} {t.tzname()}"


def et_date(ns: int) -> str:
    t = datetime.fromtimestamp(ns / NS, UTC).astimezone(ET)
    return f"{t.strftime('%b')} {t.day}, {t.year}"


def strike_text(e2: int) -> str:
    """Strike as tickers print it: ``86749.99``, ``84650`` (trailing zeros trimmed)."""
    return format_fixed(e2, 2, trim=True)


def dollars_text(e2: int) -> str:
    """``$64,839.26`` as in subtitles."""
    whole, cents = divmod(e2, 100)
    return f"${whole:,}.{cents:02d}"


@dataclass
class Market:
    """One market and its mutable state; strikes and values in integer cents."""

    ticker: str
    event_ticker: str
    series: str
    market_id: str
    created_ns: int
    open_ns: int
    close_ns: int
    strike_type: str
    floor_e2: int | None
    cap_e2: int | None
    title: str
    yes_sub_title: str
    no_sub_title: str
    rules_primary: str
    tapered: bool = False
    status: str = "initialized"
    result: str = ""
    expiration_e2: int | None = None
    determined_ns: int | None = None
    settled_ns: int | None = None
    updated_ns: int = 0
    volume_e2: int = 0
    open_interest_e2: int = 0
    dollar_volume_e6: int = 0
    last_price_e4: int = 0
    last_trade_e2: int = 0
    extras: dict[str, object] = field(default_factory=dict)

    def settles_yes(self, value_e2: int) -> bool:
        """The contract rule: is this expiration value a YES?"""
        lo, hi = self.floor_e2, self.cap_e2
        if self.strike_type == "greater_or_equal":
            return lo is not None and value_e2 >= lo
        if self.strike_type == "greater":
            return lo is not None and value_e2 > lo
        if self.strike_type == "less":
            return hi is not None and value_e2 < hi
        return lo is not None and hi is not None and lo <= value_e2 <= hi


RULES_SECONDARY = (
    "Not investment advice. At the last minute before expiration, 60 RTI prices are collected. "
    "The official and final value is the average of these prices, rounded to the nearest 2 "
    "decimal places."
)


class IndexTape:
    """Per-second index values in integer cents, sampled from the world's BRTI callable.

    Values are taken at whole seconds (``index(s * 1e9)``) and cached, so the strike, the
    settlement and the ``cfbenchmarks_value`` ticks all use the very same numbers.
    """

    def __init__(self, index: Callable[[int], float | None]) -> None:
        self._index = index
        self._cache: dict[int, int | None] = {}

    def value_e2(self, sec: int) -> int | None:
        try:
            return self._cache[sec]
        except KeyError:
            pass
        v = self._index(sec * NS)
        out = None if v is None or not math.isfinite(v) else round(v * 100)
        if len(self._cache) > 20_000:
            self._cache.clear()
        self._cache[sec] = out
        return out

    def window(self, end_sec: int, n: int = 60) -> list[int]:
        """Values at seconds ``end_sec-n … end_sec-1`` (window ``[t−n s, t)``), gaps skipped."""
        vals = (self.value_e2(s) for s in range(end_sec - n, end_sec))
        return [v for v in vals if v is not None]

    def average_e2(self, end_ns: int) -> int | None:
        """Settlement figure: mean of the 60 values before ``end_ns``, half-up to cents."""
        vals = self.window(end_ns // NS)
        if not vals:
            return None
        n = len(vals)
        return (2 * sum(vals) + n) // (2 * n)


def _market_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Schedule:
    """Which markets exist at an instant, created the way Kalshi lists them (§6).

    ``KXBTC15M``: the running window plus the next one (``initialized``); ``KXBTCD`` and
    ``KXBTC``: the running hour plus the next, ladders centred on the index when the event is
    created. ``ladder`` strikes each side of the centre, ``step_e2`` apart (cents).
    """

    def __init__(
        self,
        tape: IndexTape,
        rng: random.Random,
        *,
        series: tuple[str, ...] = (SERIES_15M, SERIES_HOURLY, SERIES_RANGE),
        ladder: int = 5,
        step_e2: int = 25_000,
        tapered: bool = True,
    ) -> None:
        self.tape = tape
        self.rng = rng
        self.series = series
        self.ladder = ladder
        self.step_e2 = step_e2
        self.tapered = tapered
        self._seen_events: set[str] = set()

    def due(self, now_ns: int) -> list[Market]:
        """Markets that should exist by ``now_ns`` and were not created yet."""
        out: list[Market] = []
        if SERIES_15M in self.series:
            first = now_ns // QUARTER_NS * QUARTER_NS + QUARTER_NS
            for close in (first, first + QUARTER_NS):
                out.extend(self._new_15m(close, now_ns))
        hourly = [s for s in (SERIES_HOURLY, SERIES_RANGE) if s in self.series]
        first_h = now_ns // HOUR_NS * HOUR_NS + HOUR_NS
        for close in (first_h, first_h + HOUR_NS):
            for s in hourly:
                out.extend(self._new_hourly(s, close, now_ns))
        return out

    def _new_event(self, event: str) -> bool:
        if event in self._seen_events:
            return False
        self._seen_events.add(event)
        return True

    def _new_15m(self, close: int, now_ns: int) -> list[Market]:
        event = f"{SERIES_15M}-{event_code(close, minute=True)}"
        if not self._new_event(event):
            return []
        open_ns = close - QUARTER_NS
        rules = (
            f"If the simple average of the sixty seconds of CF Benchmarks' BRTI before "
            f"{et_clock(close)} on {et_date(close)} is at least the simple average of the sixty "
            f"seconds of CF Benchmarks' BRTI before {et_clock(open_ns)} on {et_date(open_ns)}, "
            "then the market resolves to Yes."
        )
        m = Market(
            ticker=f"{event}-{event[-2:]}",
            event_ticker=event,
            series=SERIES_15M,
            market_id=_market_id(self.rng),
            created_ns=now_ns,
            open_ns=open_ns,
            close_ns=close,
            strike_type="greater_or_equal",
            floor_e2=None,
            cap_e2=None,
            title="BTC price up in next 15 mins?",
            yes_sub_title="Target Price: TBD",
            no_sub_title="Target price: TBD",
            rules_primary=rules,
            tapered=self.tapered,
            updated_ns=now_ns,
        )
        return [m]

    def _center(self, now_ns: int) -> int | None:
        v = self.tape.value_e2(now_ns // NS)
        if v is None:
            return None
        return round(v / self.step_e2) * self.step_e2

    def _new_hourly(self, series: str, close: int, now_ns: int) -> list[Market]:
        event = f"{series}-{event_code(close, minute=False)}"
        center = self._center(now_ns)
        if center is None or not self._new_event(event):
            return []
        when = f"{et_clock(close)} on {et_date(close)}"
        base = (
            "If the simple average of the sixty seconds of CF Benchmarks' Bitcoin Real-Time "
            f"Index (BRTI) before {when}"
        )
        step, n = self.step_e2, self.ladder
        out: list[Market] = []

        def make(
            suffix: str, kind: str, lo: int | None, hi: int | None, yes: str, rule: str
        ) -> None:
            out.append(
                Market(
                    ticker=f"{event}-{suffix}",
                    event_ticker=event,
                    series=series,
                    market_id=_market_id(self.rng),
                    created_ns=now_ns,
                    open_ns=close - HOUR_NS,
                    close_ns=close,
                    strike_type=kind,
                    floor_e2=lo,
                    cap_e2=hi,
                    title=f"Bitcoin price on {et_date(close)}?",
                    yes_sub_title=yes,
                    no_sub_title=yes,
                    rules_primary=f"{base} is {rule}, then the market resolves to Yes.",
                    updated_ns=now_ns,
                )
            )

        if series == SERIES_HOURLY:
            for k in range(-n, n + 1):
                lo = center + k * step - 1
                make(
                    f"T{strike_text(lo)}",
                    "greater",
                    lo,
                    None,
                    f"{dollars_text(lo + 1)[:-3]} or above",
                    f"above {strike_text(lo)}",
                )
        else:
            floors = [center + k * step for k in range(-n, n)]
            low, high = floors[0], floors[-1] + step
            make(
                f"T{strike_text(low - 1)}",
                "less",
                None,
                low,
                f"{dollars_text(low)[:-3]} or below",
                f"below {strike_text(low)}",
            )
            for lo in floors:
                hi = lo + step - 1
                make(
                    f"B{strike_text(lo + step // 2)}",
                    "between",
                    lo,
                    hi,
                    f"{dollars_text(lo)[:-3]} to {dollars_text(hi)}",
                    f"between {strike_text(lo)} and {strike_text(hi)}",
                )
            make(
                f"T{strike_text(high - 1)}",
                "greater",
                high - 1,
                None,
                f"{dollars_text(high)[:-3]} or above",
                f"above {strike_text(high - 1)}",
            )
        return out
