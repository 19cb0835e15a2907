"""Kalshi BTC tickers, market and series metadata, and the contract settlement rule.

Ticker formats (reference/kalshi-api.md §6, verified against live captures 2026):

- ``KXBTC15M-{YY}{MON}{DD}{HHMM}-{MM}``: one market per 15-minute event; ``HHMM`` is the close
  time in US Eastern, ``MM`` the close minute; open = close - 15 min.
- ``KXBTCD-{YY}{MON}{DD}{HH}-T{strike}``: hourly/daily above-strike ladder, ``HH`` = close
  hour ET.
- ``KXBTC-{YY}{MON}{DD}{HH}-B{mid}`` (range bucket, ``between``) or ``-T{strike}`` (edge
  buckets, ``less``/``greater``).

Wall times are America/New_York (DST-correct via zoneinfo). In the repeated hour when
daylight saving ends (01:00-02:00 on the first Sunday of November) a wall time names two
instants; a ticker alone cannot tell them apart, so parsing takes the first (EDT) unless
``fold=1`` is given, and the REST ``close_time`` of a `Market` is authoritative.

`Market` reads a REST market object of every era: legacy integer cents / counts (≤ 2025),
the 2026 transition (both), and the current ``*_dollars`` / ``*_fp`` strings (legacy fields
removed 2026-01-15). Prices are ``*_e4`` ints, counts ``*_e2``, strikes and underlying
values ``*_e8`` (`arbkit.core.fixed`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from arbkit.core.clock import rfc3339_ns
from arbkit.core.fixed import (
    KALSHI_PRICE_DIGITS,
    KALSHI_PRICE_SCALE,
    KALSHI_QTY_DIGITS,
    SPOT_DIGITS,
    format_fixed,
    parse_fixed,
    parse_number,
)

EASTERN = ZoneInfo("America/New_York")
BTC_SERIES: tuple[str, ...] = ("KXBTC15M", "KXBTCD", "KXBTC")
"""The bitcoin series arbkit follows: 15-minute up/down, hourly ladder, range buckets."""

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NO = {m: i + 1 for i, m in enumerate(_MONTHS)}
_TICKER = re.compile(
    r"^(?P<series>[A-Z0-9]+)-(?P<yy>\d{2})(?P<mon>[A-Z]{3})(?P<dd>\d{2})"
    r"(?P<hh>\d{2})(?P<mm>\d{2})?(?:-(?P<suffix>[A-Z0-9.\-]+))?$"
)
FIFTEEN_MIN = timedelta(minutes=15)
LadderLevel = tuple[int, int]
"""A Kalshi book level: ``(price_e4, count_e2)``."""


def is_fifteen_minute(series: str) -> bool:
    """True for the 15-minute up/down series (KXBTC15M, KXETH15M, ...), whose codes carry HHMM."""
    return series.endswith("15M")


# ---------------------------------------------------------------------------------------------
# Times


def eastern_to_utc(wall: datetime, *, fold: int = 0) -> datetime:
    """A naive US Eastern wall time as an aware UTC datetime; ValueError if it never occurs."""
    local = wall.replace(tzinfo=EASTERN, fold=fold)
    utc = local.astimezone(UTC)
    if utc.astimezone(EASTERN).replace(tzinfo=None) != wall:
        msg = f"{wall:%Y-%m-%d %H:%M} does not exist in US Eastern (clocks spring forward)"
        raise ValueError(msg)
    return utc


# ---------------------------------------------------------------------------------------------
# Tickers


@dataclass(frozen=True, slots=True)
class Ticker:
    """A parsed Kalshi date-coded ticker (event ticker when ``suffix`` is empty)."""

    series: str
    close_utc: datetime
    suffix: str = ""

    @property
    def event(self) -> str:
        """The event ticker: series plus the close time in US Eastern."""
        return f"{self.series}-{event_code(self.series, self.close_utc)}"

    @property
    def open_utc(self) -> datetime | None:
        """The open time implied by the ticker (15-minute series only; None otherwise)."""
        return self.close_utc - FIFTEEN_MIN if is_fifteen_minute(self.series) else None

    @property
    def strike_code(self) -> str:
        """The strike part without its letter: ``86749.99`` of ``T86749.99``; ``""`` if none."""
        return self.suffix[1:] if self.suffix[:1] in ("T", "B") else ""

    def __str__(self) -> str:
        return f"{self.event}-{self.suffix}" if self.suffix else self.event


def event_code(series: str, close_utc: datetime) -> str:
    """The ``{YY}{MON}{DD}{HH}[{MM}]`` code of a close time (US Eastern wall clock)."""
    wall = close_utc.astimezone(EASTERN)
    code = f"{wall:%y}{_MONTHS[wall.month - 1]}{wall:%d%H}"
    if is_fifteen_minute(series):
        return code + f"{wall:%M}"
    if wall.minute or wall.second:
        msg = f"{series} closes on the hour; {close_utc.isoformat()} is not"
        raise ValueError(msg)
    return code


def parse_ticker(text: str, *, fold: int = 0) -> Ticker:
    """Parse an event or market ticker of a date-coded series; ValueError if malformed."""
    m = _TICKER.match(text)
    if m is None or m["mon"] not in _MONTH_NO:
        msg = f"{text!r} is not a date-coded Kalshi ticker like KXBTCD-26AUG2317-T86749.99"
        raise ValueError(msg)
    series = m["series"]
    if is_fifteen_minute(series) != (m["mm"] is not None):
        msg = f"{text!r}: {series} tickers carry {'HHMM' if is_fifteen_minute(series) else 'HH'}"
        raise ValueError(msg)
    wall = datetime(
        2000 + int(m["yy"]),
        _MONTH_NO[m["mon"]],
        int(m["dd"]),
        int(m["hh"]),
        int(m["mm"] or 0),
    )
    suffix = m["suffix"] or ""
    if is_fifteen_minute(series) and suffix and suffix != m["mm"]:
        msg = f"{text!r}: a 15-minute market's suffix is its close minute {m['mm']}"
        raise ValueError(msg)
    return Ticker(series, eastern_to_utc(wall, fold=fold), suffix)


def format_strike(strike_e8: int) -> str:
    """A strike as it appears in tickers: ``86749.99``, ``64000`` (no trailing zeros)."""
    return format_fixed(strike_e8, SPOT_DIGITS, trim=True)


def market_ticker(
    series: str, close_utc: datetime, *, strike_e8: int | None = None, kind: str = "T"
) -> str:
    """Format a market ticker: 15-minute (no strike), ``-T{strike}`` or ``-B{mid}`` (kind B)."""
    if is_fifteen_minute(series):
        suffix = f"{close_utc.astimezone(EASTERN):%M}"
    else:
        if strike_e8 is None or kind not in ("T", "B"):
            msg = f"{series} market tickers need a strike and kind 'T' or 'B'"
            raise ValueError(msg)
        suffix = kind + format_strike(strike_e8)
    return str(Ticker(series, close_utc, suffix))


# ---------------------------------------------------------------------------------------------
# Strike semantics


class StrikeType(StrEnum):
    """How a market's strike(s) decide YES (REST ``strike_type``)."""

    GREATER = "greater"
    GREATER_OR_EQUAL = "greater_or_equal"
    LESS = "less"
    LESS_OR_EQUAL = "less_or_equal"
    BETWEEN = "between"
    FUNCTIONAL = "functional"
    CUSTOM = "custom"
    STRUCTURED = "structured"


def settles_yes(
    strike_type: StrikeType, value_e8: int, floor_e8: int | None, cap_e8: int | None
) -> bool:
    """Whether the (already rounded) settlement value makes YES win, by the contract rule.

    ``greater``: value > floor; ``greater_or_equal``: value >= floor; ``less``: value < cap;
    ``less_or_equal``: value <= cap; ``between``: floor <= value <= cap (both inclusive, as
    KXBTC buckets ``84600``-``84699.99`` tile the line at 2 dp). Raises ValueError for strike
    types with no numeric rule or a missing strike.
    """
    lower = strike_type in (StrikeType.GREATER, StrikeType.GREATER_OR_EQUAL, StrikeType.BETWEEN)
    upper = strike_type in (StrikeType.LESS, StrikeType.LESS_OR_EQUAL, StrikeType.BETWEEN)
    if not (lower or upper):
        msg = f"strike_type {strike_type.value!r} has no numeric settlement rule"
        raise ValueError(msg)
    if lower:
        if floor_e8 is None:
            msg = f"a {strike_type.value} market needs floor_strike"
            raise ValueError(msg)
        above = value_e8 > floor_e8 if strike_type is StrikeType.GREATER else value_e8 >= floor_e8
        if not above:
            return False
    if upper:
        if cap_e8 is None:
            msg = f"a {strike_type.value} market needs cap_strike"
            raise ValueError(msg)
        return value_e8 < cap_e8 if strike_type is StrikeType.LESS else value_e8 <= cap_e8
    return True


def round_settlement(value_e8: int, digits: int = 2) -> int:
    """Round an average to the contract's ``round_digits`` ("nearest", half away from zero)."""
    q = Decimal(value_e8).scaleb(-SPOT_DIGITS).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)
    return int(q.scaleb(SPOT_DIGITS))


# ---------------------------------------------------------------------------------------------
# Market / series objects


def _opt_time(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return rfc3339_ns(value) if value else None


def price_e4(obj: Mapping[str, Any], name: str) -> int | None:
    """Price field ``name`` of a REST/WS object: ``{name}_dollars`` (string, 2026) or the
    legacy integer cents ``{name}``; None if neither is present."""
    dollars = obj.get(f"{name}_dollars")
    if dollars is not None:
        return parse_number(dollars, KALSHI_PRICE_DIGITS)
    cents = obj.get(name)
    if cents is None:
        return None
    return parse_number(cents, KALSHI_PRICE_DIGITS - 2)


_CACHE_LIMIT = 1 << 16
DOLLARS_MEMO: dict[str | None, int] = {}
"""Memo of `dollars_e4` (prices repeat; the WebSocket hot path reads it directly)."""
FP_MEMO: dict[str | None, int] = {}
"""Memo of `fp_e2`."""


def dollars_e4(text: str) -> int:
    """A dollar price string (``"0.1500"``) -> exact $0.0001 units, memoised; a price outside
    $0–$1 or not a string raises ValueError."""
    value = DOLLARS_MEMO.get(text)
    if value is None:
        if not isinstance(text, str):
            msg = f"price {text!r} is not a dollar string"
            raise ValueError(msg)
        value = parse_fixed(text, KALSHI_PRICE_DIGITS)
        if not 0 <= value <= KALSHI_PRICE_SCALE:
            msg = f"price {text!r} outside $0–$1"
            raise ValueError(msg)
        if len(DOLLARS_MEMO) < _CACHE_LIMIT:
            DOLLARS_MEMO[text] = value
    return value


def fp_e2(text: str) -> int:
    """A fixed-point count string (``"-138.96"``) -> exact 0.01 units, memoised."""
    value = FP_MEMO.get(text)
    if value is None:
        # "-138.96": exactly two decimals is the wire norm; anything else takes the full parser
        if text[-3:-2] == "." and text[-2:].isdigit() and text[:-3].lstrip("-").isdigit():
            value = int(text.replace(".", "", 1))
        else:
            value = parse_fixed(text, KALSHI_QTY_DIGITS)
        if len(FP_MEMO) < _CACHE_LIMIT:
            FP_MEMO[text] = value
    return value


def ladder(levels: Iterable[Sequence[Any]] | None, *, cents: bool = False) -> list[LadderLevel]:
    """A bid ladder ``[[price, count], ...]`` of any era as exact ``(price_e4, count_e2)``
    pairs, in the order sent; None (a side absent or null) is empty.

    Prices are dollar strings (2025 on), or legacy integer cents with ``cents``; counts are
    fixed-point strings (2026) or legacy integers. One parser for the WebSocket snapshot and the
    REST order book: a price outside $0–$1 or a non-integer legacy price raises ValueError.
    """
    return [
        (
            cents_e4(p) if cents else dollars_e4(p),
            fp_e2(q) if isinstance(q, str) else parse_number(q, KALSHI_QTY_DIGITS),
        )
        for p, q in levels or ()
    ]


def cents_e4(value: Any) -> int:
    """A legacy integer-cents price (0–100) as ``*_e4``; anything else raises ValueError."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        msg = f"legacy price {value!r} is not integer cents"
        raise ValueError(msg)
    return value * 100


# ---------------------------------------------------------------------------------------------
# WebSocket ``orderbook_delta`` of every era


class DeltaMsg(msgspec.Struct, gc=False):
    """``orderbook_delta`` payload, all eras (reference/kalshi-api.md §3): legacy integer cents
    ``price`` and whole-contract ``delta`` (2023–2025, venue time ``ts`` RFC 3339), the 2026
    transition (those plus ``price_dollars``/``delta_fp``), current (strings and ``ts_ms``)."""

    market_ticker: str
    side: Literal["yes", "no"]
    price_dollars: str | None = None
    delta_fp: str | None = None
    price: int | None = None
    delta: int | None = None
    ts_ms: int | None = None
    ts: str | None = None


class DeltaFrame(msgspec.Struct, gc=False, tag_field="type", tag="orderbook_delta"):
    """A delta frame of any era (its ``type`` tag checked)."""

    sid: int
    seq: int
    msg: DeltaMsg
    sending_ts_ms: int | None = None


_decode_delta: Callable[[str], DeltaFrame] = msgspec.json.Decoder(DeltaFrame).decode

Delta = tuple[int, int, str, str, int, int, int | None]
"""A parsed delta: sid, seq, market, side, price_e4, qty_e2, venue time (ns)."""

_TS_MEMO: dict[str, int] = {}
"""Memo of RFC 3339 ``ts`` -> ns (legacy ``ts`` has whole seconds: it repeats frame after frame)."""


def delta_values(frame: DeltaFrame) -> Delta:
    """A delta of any era as exact values; exact strings win over legacy integers, venue time
    is ``ts_ms``, else ``ts``, else ``sending_ts_ms``. ValueError if price or size is missing
    or out of range. (Memo reads inlined: this is the replay hot path of old recordings.)"""
    m = frame.msg
    text = m.price_dollars
    if text is not None:
        price = DOLLARS_MEMO.get(text)
        if price is None:
            price = dollars_e4(text)
    elif m.price is not None:
        price = m.price * 100
        if not 0 <= price <= KALSHI_PRICE_SCALE:
            raise ValueError(f"legacy price {m.price!r} is not integer cents")
    else:
        raise ValueError("delta without price_dollars or price")
    text = m.delta_fp
    if text is not None:
        qty = FP_MEMO.get(text)
        if qty is None:
            qty = fp_e2(text)
    elif m.delta is not None:
        qty = m.delta * 100
    else:
        raise ValueError("delta without delta_fp or delta")
    exch: int | None
    if m.ts_ms is not None:
        exch = m.ts_ms * 1_000_000
    elif (ts := m.ts) is not None:
        exch = _TS_MEMO.get(ts)
        if exch is None:
            exch = rfc3339_ns(ts)
            if len(_TS_MEMO) >= _CACHE_LIMIT:
                _TS_MEMO.clear()
            _TS_MEMO[ts] = exch
    else:
        exch = None if frame.sending_ts_ms is None else frame.sending_ts_ms * 1_000_000
    return frame.sid, frame.seq, m.market_ticker, m.side, price, qty, exch


def any_era_delta(frame: str | DeltaFrame) -> Delta | None:
    """A delta frame of any era, as text (decoded typed in one pass, no dict built) or already
    decoded; None if it is not a readable delta (the caller's general path says why)."""
    try:
        return delta_values(_decode_delta(frame) if isinstance(frame, str) else frame)
    except (msgspec.DecodeError, ValueError):
        return None


def count_e2(obj: Mapping[str, Any], name: str) -> int | None:
    """Count field ``name``: ``{name}_fp`` (string, 2026) or the legacy integer ``{name}``."""
    fp = obj.get(f"{name}_fp")
    if fp is not None:
        return parse_number(fp, KALSHI_QTY_DIGITS)
    count = obj.get(name)
    return None if count is None else parse_number(count, KALSHI_QTY_DIGITS)


def _strike_type(value: Any) -> StrikeType | None:
    """The strike type, or None when absent or newer than this parser (no numeric rule)."""
    try:
        return StrikeType(value) if value else None
    except ValueError:
        return None


def _strike_e8(value: Any) -> int | None:
    return None if value is None else parse_number(value, SPOT_DIGITS)


@dataclass(frozen=True, slots=True)
class PriceRange:
    """One band of a market's price grid (``price_ranges``)."""

    start_e4: int
    end_e4: int
    step_e4: int


@dataclass(frozen=True, slots=True)
class Market:
    """The fields of a REST market object arbkit uses, exact, from any wire era."""

    ticker: str
    event_ticker: str
    series: str
    status: str
    market_type: str
    title: str
    yes_sub_title: str
    no_sub_title: str
    open_ns: int
    close_ns: int
    expected_expiration_ns: int | None
    strike_type: StrikeType | None
    floor_strike_e8: int | None
    cap_strike_e8: int | None
    round_digits: int | None
    yes_bid_e4: int | None
    yes_ask_e4: int | None
    no_bid_e4: int | None
    no_ask_e4: int | None
    last_price_e4: int | None
    yes_bid_size_e2: int | None
    yes_ask_size_e2: int | None
    volume_e2: int | None
    open_interest_e2: int | None
    result: str
    expiration_value: str
    settlement_value_e4: int | None
    price_level_structure: str
    price_ranges: tuple[PriceRange, ...]

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Market:
        """Build from a REST market object (``/markets`` item or ``/markets/{t}``'s ``market``)."""
        event = obj["event_ticker"]
        strike = obj.get("strike_type")
        custom = obj.get("custom_strike")
        round_digits = custom.get("round_digits") if isinstance(custom, Mapping) else None
        ranges = tuple(
            PriceRange(
                parse_number(r["start"], KALSHI_PRICE_DIGITS),
                parse_number(r["end"], KALSHI_PRICE_DIGITS),
                parse_number(r["step"], KALSHI_PRICE_DIGITS),
            )
            for r in obj.get("price_ranges") or ()
        )
        settlement = obj.get("settlement_value_dollars")
        if settlement is None and obj.get("settlement_value") is not None:
            settlement = parse_number(obj["settlement_value"], KALSHI_PRICE_DIGITS - 2)
        elif settlement is not None:
            settlement = parse_number(settlement, KALSHI_PRICE_DIGITS)
        return cls(
            ticker=obj["ticker"],
            event_ticker=event,
            series=event.split("-", 1)[0],
            status=obj.get("status", ""),
            market_type=obj.get("market_type", "binary"),
            title=obj.get("title") or "",
            yes_sub_title=obj.get("yes_sub_title") or "",
            no_sub_title=obj.get("no_sub_title") or "",
            open_ns=rfc3339_ns(obj["open_time"]),
            close_ns=rfc3339_ns(obj["close_time"]),
            expected_expiration_ns=_opt_time(obj, "expected_expiration_time"),
            strike_type=_strike_type(strike),
            floor_strike_e8=_strike_e8(obj.get("floor_strike")),
            cap_strike_e8=_strike_e8(obj.get("cap_strike")),
            round_digits=int(round_digits) if round_digits is not None else None,
            yes_bid_e4=price_e4(obj, "yes_bid"),
            yes_ask_e4=price_e4(obj, "yes_ask"),
            no_bid_e4=price_e4(obj, "no_bid"),
            no_ask_e4=price_e4(obj, "no_ask"),
            last_price_e4=price_e4(obj, "last_price"),
            yes_bid_size_e2=count_e2(obj, "yes_bid_size"),
            yes_ask_size_e2=count_e2(obj, "yes_ask_size"),
            volume_e2=count_e2(obj, "volume"),
            open_interest_e2=count_e2(obj, "open_interest"),
            result=obj.get("result") or "",
            expiration_value=obj.get("expiration_value") or "",
            settlement_value_e4=settlement,
            price_level_structure=obj.get("price_level_structure") or "",
            price_ranges=ranges,
        )

    @property
    def is_open(self) -> bool:
        """Trading now by status (REST ``active``; the filter value ``open`` maps to it)."""
        return self.status in ("active", "open")

    def settles_yes(self, value_e8: int) -> bool:
        """Whether settlement value ``value_e8`` (rounded per the contract) makes YES win."""
        if self.strike_type is None:
            msg = f"{self.ticker} has no strike_type; its settlement rule is not numeric"
            raise ValueError(msg)
        return settles_yes(self.strike_type, value_e8, self.floor_strike_e8, self.cap_strike_e8)


@dataclass(frozen=True, slots=True)
class Series:
    """Series metadata (``GET /series/{t}``); ``fee_multiplier`` kept as an exact Decimal."""

    ticker: str
    title: str
    frequency: str
    category: str
    fee_type: str
    fee_multiplier: Decimal

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Series:
        mult = obj.get("fee_multiplier", 1)
        return cls(
            ticker=obj["ticker"],
            title=obj.get("title") or "",
            frequency=obj.get("frequency") or "",
            category=obj.get("category") or "",
            fee_type=obj.get("fee_type") or "quadratic",
            fee_multiplier=Decimal(mult if isinstance(mult, str) else repr(mult)),
        )


def settlement_value_from_text(text: str) -> int | None:
    """``expiration_value`` as ``*_e8`` when numeric ("64809.04"); None for "Yes"/""/other text."""
    if not re.fullmatch(r"-?\d+(\.\d+)?", text):
        return None
    return parse_number(text, SPOT_DIGITS)


__all__ = [
    "BTC_SERIES",
    "EASTERN",
    "FIFTEEN_MIN",
    "Market",
    "PriceRange",
    "Series",
    "StrikeType",
    "Ticker",
    "count_e2",
    "eastern_to_utc",
    "event_code",
    "format_strike",
    "is_fifteen_minute",
    "market_ticker",
    "parse_ticker",
    "price_e4",
    "round_settlement",
    "settlement_value_from_text",
    "settles_yes",
]
