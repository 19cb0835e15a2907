"""Kalshi tickers (US Eastern, DST), market objects of every era, settlement rules, series."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from arbkit.core.clock import rfc3339_ns
from arbkit.venues.kalshi.markets import (
    Market,
    Series,
    StrikeType,
    market_ticker,
    parse_ticker,
    round_settlement,
    settlement_value_from_text,
    settles_yes,
)
from tests.fixtures import real_fixture

E8 = 10**8


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- tickers -----------------------------------------------------------------------------------


def test_reference_verified_examples() -> None:
    t = parse_ticker("KXBTC15M-26JUL232045-45")
    assert (t.open_utc, t.close_utc) == (utc(2026, 7, 24, 0, 30), utc(2026, 7, 24, 0, 45))
    assert t.event == "KXBTC15M-26JUL232045"
    assert str(t) == "KXBTC15M-26JUL232045-45"
    d = parse_ticker("KXBTCD-26AUG2317-T86749.99")
    assert d.close_utc == utc(2026, 8, 23, 21)
    assert d.open_utc is None  # ladders open days ahead; only REST knows
    assert (d.event, d.suffix, d.strike_code) == ("KXBTCD-26AUG2317", "T86749.99", "86749.99")
    b = parse_ticker("KXBTC-26OCT0318-B84650")
    assert (b.close_utc, b.strike_code) == (utc(2026, 10, 3, 22), "84650")
    assert parse_ticker("KXBTC15M-26AUG170130-30").close_utc == utc(2026, 8, 17, 5, 30)


def test_winter_is_est() -> None:
    assert parse_ticker("KXBTC15M-26JAN150930-30").close_utc == utc(2026, 1, 15, 14, 30)
    assert parse_ticker("KXBTCD-26DEC2417-T98999.99").close_utc == utc(2026, 12, 24, 22)


def test_spring_forward_2026_03_08() -> None:
    before = parse_ticker("KXBTC15M-26MAR080145-45")  # 01:45 EST
    assert before.close_utc == utc(2026, 3, 8, 6, 45)
    after = parse_ticker("KXBTC15M-26MAR080300-00")  # 03:00 EDT, 15 real minutes later
    assert after.close_utc == utc(2026, 3, 8, 7, 0)
    assert after.open_utc == before.close_utc
    with pytest.raises(ValueError, match="does not exist"):
        parse_ticker("KXBTC15M-26MAR080215-15")
    closes = [utc(2026, 3, 8, 6, 30) + timedelta(minutes=15 * i) for i in range(4)]
    assert [market_ticker("KXBTC15M", c) for c in closes] == [
        "KXBTC15M-26MAR080130-30",
        "KXBTC15M-26MAR080145-45",
        "KXBTC15M-26MAR080300-00",
        "KXBTC15M-26MAR080315-15",
    ]


def test_fall_back_2026_11_01() -> None:
    assert market_ticker("KXBTC15M", utc(2026, 11, 1, 5, 45)) == "KXBTC15M-26NOV010145-45"
    # 06:00Z is 01:00 EST, the same wall time as 05:00Z (01:00 EDT): the ticker is ambiguous.
    assert market_ticker("KXBTC15M", utc(2026, 11, 1, 6)) == "KXBTC15M-26NOV010100-00"
    assert market_ticker("KXBTC15M", utc(2026, 11, 1, 5)) == "KXBTC15M-26NOV010100-00"
    assert parse_ticker("KXBTC15M-26NOV010100-00").close_utc == utc(2026, 11, 1, 5)
    assert parse_ticker("KXBTC15M-26NOV010100-00", fold=1).close_utc == utc(2026, 11, 1, 6)
    assert parse_ticker("KXBTCD-26NOV0102-T70000").close_utc == utc(2026, 11, 1, 7)


def test_formatting_round_trips() -> None:
    close = utc(2026, 8, 23, 21)
    assert market_ticker("KXBTCD", close, strike_e8=8674999 * 10**6) == "KXBTCD-26AUG2317-T86749.99"
    assert market_ticker("KXBTCD", close, strike_e8=64000 * E8) == "KXBTCD-26AUG2317-T64000"
    assert market_ticker("KXBTC", close, strike_e8=84650 * E8, kind="B") == "KXBTC-26AUG2317-B84650"
    for text in ("KXBTC15M-26SEP071415-15", "KXBTC-26JUL1518-B63625", "KXBTCD-26AUG2317"):
        assert str(parse_ticker(text)) == text
    with pytest.raises(ValueError, match="on the hour"):
        market_ticker("KXBTCD", utc(2026, 8, 23, 21, 15), strike_e8=E8)
    with pytest.raises(ValueError, match="strike"):
        market_ticker("KXBTCD", close)


@pytest.mark.parametrize(
    "bad",
    [
        "KXBTC15M-26FEB0417-T106000",  # the form AI-written repos guess; not real
        "KXBTCD-26AUG231700-T1",  # hourly series carry HH only
        "KXBTC15M-26XYZ232045-45",
        "KXBTC15M-26JUL232045-30",  # suffix must be the close minute
        "KXNCAAFGAME-26SEP19MSUND-ND",
        "",
    ],
)
def test_malformed_tickers(bad: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_ticker(bad)


# --- times -------------------------------------------------------------------------------------


def test_rfc3339_to_exact_ns() -> None:
    assert rfc3339_ns("2026-07-24T00:45:06.036714Z") == 1784853906036714000
    assert rfc3339_ns("2026-07-23T00:01:06.45151Z") == 1784764866451510000
    assert rfc3339_ns("2026-07-24T00:30:00Z") == 1784853000 * 10**9
    assert rfc3339_ns("2026-07-24T02:30:00+02:00") == 1784853000 * 10**9
    assert rfc3339_ns("2026-07-24T00:30:00.123456789Z") == 1784853000123456789
    # Second calls take the cached-seconds fast path and must agree with the first.
    for text in ("2026-04-18T05:34:28.97871Z", "2026-04-18T05:34:28Z", "2026-04-18T05:34:28.5Z"):
        assert rfc3339_ns(text) == rfc3339_ns(text)
    assert rfc3339_ns("2026-04-18T05:34:28.5Z") == 1776490468_500_000_000
    assert rfc3339_ns("2026-04-18T05:34:28.1234567891Z") == 1776490468_123_456_789
    assert rfc3339_ns("2026-04-18T05:34:28+01:00") == 1776486868 * 10**9
    for bad in ("yesterday", "2026-04-18T05:34:28.9x7Z", "2026-04-18T05:34:28.Z"):
        with pytest.raises(ValueError, match="RFC 3339"):
            rfc3339_ns(bad)


# --- settlement --------------------------------------------------------------------------------

# The finalized KXBTC15M market of the reference (live capture 2026-07-24, trimmed).
FINALIZED_15M: dict[str, Any] = {
    "ticker": "KXBTC15M-26JUL232045-45",
    "event_ticker": "KXBTC15M-26JUL232045",
    "market_type": "binary",
    "title": "BTC price up in next 15 mins?",
    "yes_sub_title": "Target Price: $64,839.26",
    "no_sub_title": "Target price: TBD",
    "open_time": "2026-07-24T00:30:00Z",
    "close_time": "2026-07-24T00:45:00Z",
    "expected_expiration_time": "2026-07-24T00:50:00Z",
    "status": "finalized",
    "result": "no",
    "strike_type": "greater_or_equal",
    "floor_strike": 64839.26,
    "custom_strike": {"round_digits": "2"},
    "expiration_value": "64809.04",
    "settlement_value_dollars": "0.0000",
    "yes_bid_dollars": "0.0000",
    "yes_ask_dollars": "1.0000",
    "no_bid_dollars": "0.0000",
    "no_ask_dollars": "1.0000",
    "yes_bid_size_fp": "0.00",
    "yes_ask_size_fp": "0.00",
    "last_price_dollars": "0.0010",
    "volume_fp": "2892084.61",
    "open_interest_fp": "657094.82",
    "price_level_structure": "tapered_deci_cent",
    "price_ranges": [
        {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
        {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
        {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
    ],
}


def test_finalized_15m_market_settles_as_recorded() -> None:
    m = Market.from_api(FINALIZED_15M)
    assert m.series == "KXBTC15M"
    assert m.strike_type is StrikeType.GREATER_OR_EQUAL
    assert m.floor_strike_e8 == 6483926 * 10**6
    assert m.round_digits == 2
    assert m.close_ns - m.open_ns == 15 * 60 * 10**9
    assert m.close_ns == int(parse_ticker(m.ticker).close_utc.timestamp()) * 10**9
    value = settlement_value_from_text(m.expiration_value)
    assert value == 6480904 * 10**6
    assert m.settles_yes(value) is (m.result == "yes")
    assert m.settles_yes(m.floor_strike_e8)  # "at least" the target is YES
    assert m.settlement_value_e4 == 0
    assert (m.last_price_e4, m.volume_e2, m.open_interest_e2) == (10, 289208461, 65709482)
    assert [(r.start_e4, r.end_e4, r.step_e4) for r in m.price_ranges] == [
        (0, 1000, 10),
        (1000, 9000, 100),
        (9000, 10000, 10),
    ]
    assert not m.is_open


@pytest.mark.parametrize(
    ("strike_type", "value", "floor", "cap", "yes"),
    [
        ("greater", 86749.99, 86749.99, None, False),  # KXBTCD: strictly above
        ("greater", 86750.00, 86749.99, None, True),
        ("greater_or_equal", 64839.26, 64839.26, None, True),
        ("greater_or_equal", 64839.25, 64839.26, None, False),
        ("between", 84600.00, 84600, 84699.99, True),  # KXBTC-26OCT0318-B84650
        ("between", 84699.99, 84600, 84699.99, True),
        ("between", 84700.00, 84600, 84699.99, False),
        ("between", 84599.99, 84600, 84699.99, False),
        ("less", 60000.00, None, 60000, False),
        ("less", 59999.99, None, 60000, True),
        ("less_or_equal", 60000.00, None, 60000, True),
    ],
)
def test_strike_semantics(
    strike_type: str, value: float, floor: float | None, cap: float | None, yes: bool
) -> None:
    def e8(x: float | None) -> int | None:
        return None if x is None else round(Decimal(repr(x)) * E8)

    got = settles_yes(StrikeType(strike_type), e8(value), e8(floor), e8(cap))  # type: ignore[arg-type]
    assert got is yes


def test_strike_rules_need_their_strikes() -> None:
    with pytest.raises(ValueError, match="cap_strike"):
        settles_yes(StrikeType.BETWEEN, E8, E8, None)
    with pytest.raises(ValueError, match="floor_strike"):
        settles_yes(StrikeType.GREATER, E8, None, None)
    with pytest.raises(ValueError, match="no numeric"):
        settles_yes(StrikeType.STRUCTURED, E8, E8, E8)


def test_rounding_and_non_numeric_expiration_values() -> None:
    assert round_settlement(6480904500000) == 6480905 * 10**6  # half rounds up
    assert round_settlement(6480904499999) == 6480904 * 10**6
    assert round_settlement(12345678901, 4) == 123_4568 * 10**4
    for text in ("", "Yes", "No", "TBD"):
        assert settlement_value_from_text(text) is None


# --- market objects of every era ---------------------------------------------------------------

_BASE = {
    "ticker": "KXBTCD-25DEC3117-T94999.99",
    "event_ticker": "KXBTCD-25DEC3117",
    "open_time": "2025-12-30T22:00:00Z",
    "close_time": "2025-12-31T22:00:00Z",
    "status": "active",
    "strike_type": "greater",
    "floor_strike": 94999.99,
}


def test_legacy_cents_market() -> None:
    legacy = Market.from_api(
        {
            **_BASE,
            "yes_bid": 45,
            "yes_ask": 47,
            "no_bid": 53,
            "no_ask": 55,
            "last_price": 46,
            "volume": 125000,
            "open_interest": 50000,
            "response_price_units": "usd_cent",
            "tick_size": 1,
        }
    )
    assert (legacy.yes_bid_e4, legacy.yes_ask_e4, legacy.no_bid_e4, legacy.no_ask_e4) == (
        4500,
        4700,
        5300,
        5500,
    )
    assert (legacy.last_price_e4, legacy.volume_e2, legacy.open_interest_e2) == (
        4600,
        12500000,
        5000000,
    )
    assert legacy.yes_bid_size_e2 is None
    assert legacy.is_open
    assert legacy.settles_yes(95000 * E8)


def test_transition_market_prefers_exact_strings() -> None:
    both = Market.from_api(
        {
            **_BASE,
            "yes_bid": 45,
            "yes_bid_dollars": "0.4550",
            "volume": 125000,
            "volume_fp": "125000.50",
        }
    )
    assert (both.yes_bid_e4, both.volume_e2) == (4550, 12500050)


def test_unknown_strike_type_is_kept_non_numeric() -> None:
    m = Market.from_api({**_BASE, "strike_type": "a_future_kind"})
    assert m.strike_type is None
    with pytest.raises(ValueError, match="no strike_type"):
        m.settles_yes(E8)


def test_real_cockpit_market_fixture() -> None:
    doc = json.loads(
        real_fixture("kalshi", "cockpit_rest_market_and_orderbook_2026-08-09.json").read_text()
    )
    single = Market.from_api(doc["single"]["market"])
    assert single == Market.from_api(doc["nested"])
    assert single.ticker == "KXNCAAFGAME-26SEP19MSUND-ND"
    assert single.series == "KXNCAAFGAME"
    assert single.status == "active"
    assert single.is_open
    assert single.strike_type is StrikeType.STRUCTURED
    assert (single.floor_strike_e8, single.cap_strike_e8, single.round_digits) == (None, None, None)
    assert (single.yes_bid_e4, single.yes_ask_e4, single.no_bid_e4, single.no_ask_e4) == (
        8900,
        9400,
        600,
        1100,
    )
    assert (single.yes_bid_size_e2, single.yes_ask_size_e2) == (34349, 64100)
    assert (single.volume_e2, single.open_interest_e2, single.last_price_e4) == (
        298550,
        242248,
        9500,
    )
    assert single.open_ns == rfc3339_ns("2026-05-20T19:10:00Z")
    assert single.close_ns == rfc3339_ns("2026-09-21T23:30:00Z")
    assert single.expected_expiration_ns == rfc3339_ns("2026-09-20T02:30:00Z")
    assert single.price_level_structure == "linear_cent"
    assert [(r.start_e4, r.end_e4, r.step_e4) for r in single.price_ranges] == [(0, 10000, 100)]
    assert (single.result, single.expiration_value, single.settlement_value_e4) == ("", "", None)


def test_real_series_fixture_fee_fields() -> None:
    doc = json.loads(real_fixture("kalshi", "cockpit_rest_series_2026-08-20.json").read_text())
    series = {k: Series.from_api(v["series"]) for k, v in doc["payloads"].items()}
    assert {k: (s.fee_type, s.fee_multiplier) for k, s in series.items()} == {
        "KXMLBGAME": ("quadratic_with_maker_fees", Decimal("0.5")),
        "KXMLBSPREAD": ("quadratic", Decimal("0.5")),
        "KXATPDOUBLES": ("quadratic", Decimal("1")),
        "KXWNBAGAME": ("quadratic_with_maker_fees", Decimal("1")),
    }
    assert series["KXMLBGAME"].title == "Professional Baseball Game"
    assert (series["KXMLBGAME"].frequency, series["KXMLBGAME"].category) == ("custom", "Sports")


def test_kxbtc15m_series_metadata() -> None:
    # Live capture 2026 (reference §5): KXBTC15M is quadratic with multiplier 1.
    s = Series.from_api(
        {
            "ticker": "KXBTC15M",
            "title": "Bitcoin price up down",
            "frequency": "fifteen_min",
            "category": "Crypto",
            "fee_type": "quadratic",
            "fee_multiplier": 1,
        }
    )
    assert (s.fee_type, s.fee_multiplier, s.frequency) == ("quadratic", Decimal(1), "fifteen_min")
