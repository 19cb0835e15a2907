"""The pure Strategy: every rule and its reason, sizing and fees, and the "as of" contract."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from arbkit.core.clock import rfc3339_ns
from arbkit.core.events import IndexRow, SignalRow
from arbkit.core.storage import SessionWriter, open_session
from arbkit.index.report import BRTI_REPLICA
from arbkit.strategy.fees import FeeSchedule, FeeTerms, FeeType, Rounding, taker_fee_e4
from arbkit.strategy.signals import (
    BookTop,
    Decision,
    Reason,
    Side,
    SignalParams,
    Strategy,
)
from arbkit.venues.kalshi.book import KalshiBook

S = 10**9
E8 = 10**8
T0 = rfc3339_ns("2026-08-19T12:00:00Z")  # a Wednesday: no maintenance
STRIKE = 100_000 * E8
WARM = 40  # seconds of index fed before the first decision (vol needs 30 returns)
TICKER = "KXBTC15M-26AUG190815-15"


@dataclass(frozen=True)
class Market:
    """A ``kalshi_markets`` row (INTERFACES §1), as discovery writes it."""

    recv_ns: int
    ticker: str = TICKER
    event_ticker: str = "KXBTC15M-26AUG190815"
    series: str = "KXBTC15M"
    title: str = "BTC price up in next 15 mins?"
    strike_type: str = "greater_or_equal"
    floor_strike_e8: int | None = STRIKE
    cap_strike_e8: int | None = None
    open_ns: int | None = T0 - 300 * S
    close_ns: int | None = T0 + 600 * S
    expiration_ns: int | None = None
    status: str = "active"
    result: str = ""
    expiration_value_e8: int | None = None


def top(
    recv_ns: int,
    bid: int | None = 4000,
    ask: int | None = 5000,
    *,
    yes_bid_size_e2: int = 30_000,
    yes_ask_size_e2: int = 25_000,
    valid: bool = True,
) -> BookTop:
    return BookTop(recv_ns, bid, yes_bid_size_e2, ask, yes_ask_size_e2, valid)


def warmed(
    level_e8: int = STRIKE + 2_000 * E8,
    params: SignalParams | None = None,
    **market: Any,
) -> Strategy:
    """A strategy with the market (``market`` overriding its fields), ``WARM`` seconds of
    index around ``level_e8`` (ending at T0) and a book top at T0."""
    strategy = Strategy(params or SignalParams(max_size=100, threshold_e4=200))
    strategy.market(replace(Market(T0 - WARM * S), **market))
    for k in range(WARM, -1, -1):
        wiggle = (k % 2) * 10 * E8
        strategy.index(T0 - k * S, level_e8 + wiggle)
    strategy.book(TICKER, top(T0))
    return strategy


def test_buys_yes_when_fair_beats_the_ask_after_fees() -> None:
    row = warmed().decide(TICKER, T0)
    assert (row.decision, row.side, row.reason) == (Decision.BUY, Side.YES, Reason.TRADE)
    assert row.fair_e4 == 10_000  # $2,000 above the strike with 10 min to go
    assert row.size == 100  # max_size; 250 contracts displayed at the ask
    assert row.fee_e4 == taker_fee_e4(5000, 100)  # subpenny era: $1.75
    assert row.edge_e4 == 10_000 - 5000 - 175
    assert row.index_e8 == STRIKE + 2_000 * E8
    assert row.index_age_ns == 0
    assert row.book_age_ns == 0
    assert row.book_valid
    assert (row.yes_bid_e4, row.yes_ask_e4) == (4000, 5000)
    assert (row.yes_bid_size_e2, row.yes_ask_size_e2) == (30_000, 25_000)
    assert row.vol_per_s is not None
    assert row.vol_per_s > 0
    assert row.time_to_close_ns == 600 * S
    assert row.window_observed == 0


def test_buys_no_symmetrically_at_one_minus_the_yes_bid() -> None:
    strategy = warmed(STRIKE - 2_000 * E8)
    row = strategy.decide(TICKER, T0)
    assert (row.decision, row.side, row.reason) == (Decision.BUY, Side.NO, Reason.TRADE)
    assert row.fair_e4 == 0
    no_ask = 10_000 - 4000
    assert row.size == 100
    assert row.fee_e4 == taker_fee_e4(no_ask, 100)
    assert row.edge_e4 == (10_000 - 0) - no_ask - -(-row.fee_e4 // 100)


def test_size_is_limited_by_displayed_depth_and_max_size() -> None:
    strategy = warmed(params=SignalParams(max_size=1000))
    strategy.book(TICKER, top(T0, yes_ask_size_e2=1_250))  # 12.5 contracts behind the ask
    row = strategy.decide(TICKER, T0)
    assert (row.decision, row.size) == (Decision.BUY, 12)
    assert row.fee_e4 == taker_fee_e4(5000, 12)
    strategy.book(TICKER, top(T0, yes_ask_size_e2=50, yes_bid_size_e2=99))  # < 1 contract
    assert strategy.decide(TICKER, T0).reason is Reason.NO_DEPTH
    strategy.book(TICKER, top(T0, bid=None, ask=None))  # an empty book
    assert strategy.decide(TICKER, T0).reason is Reason.NO_DEPTH


def test_threshold_is_inclusive_and_no_edge_below_it() -> None:
    edge = 10_000 - 5000 - 175
    at = warmed(params=SignalParams(threshold_e4=edge)).decide(TICKER, T0)
    assert at.decision is Decision.BUY
    above = warmed(params=SignalParams(threshold_e4=edge + 1)).decide(TICKER, T0)
    assert (above.decision, above.reason, above.size) == (Decision.NONE, Reason.NO_EDGE, 0)
    assert above.side is Side.YES
    assert above.edge_e4 == edge
    # Near the money the fair value is ~1/2: neither 0.40 bid nor 0.50 ask pays after fees.
    assert warmed(STRIKE).decide(TICKER, T0).reason is Reason.NO_EDGE


def test_fees_come_from_the_series_schedule() -> None:
    strategy = warmed()
    half = FeeSchedule("KXBTC15M", (FeeTerms(FeeType.QUADRATIC, Fraction(1, 2)),))
    strategy.fee_schedule(half)
    assert strategy.decide(TICKER, T0).fee_e4 == taker_fee_e4(5000, 100) // 2
    cent = FeeSchedule("KXBTC15M", (FeeTerms(FeeType.QUADRATIC, Fraction(1)),), Rounding.CENT)
    strategy.fee_schedule(cent)
    strategy.book(TICKER, top(T0, yes_ask_size_e2=100))  # 1 contract: ceil($0.0175) = $0.02
    row = strategy.decide(TICKER, T0)
    assert (row.size, row.fee_e4, row.edge_e4) == (1, 200, 10_000 - 5000 - 200)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "closed"}, Reason.MARKET_NOT_OPEN),
        ({"status": "initialized"}, Reason.MARKET_NOT_OPEN),
        ({"open_ns": T0 + S}, Reason.MARKET_NOT_OPEN),
        ({"close_ns": T0}, Reason.MARKET_NOT_OPEN),
        ({"close_ns": None}, Reason.MARKET_NOT_OPEN),
        ({"strike_type": "custom"}, Reason.UNSUPPORTED_STRIKE),
        ({"floor_strike_e8": None}, Reason.NO_STRIKE),  # KXBTC15M before the target is set
        ({"strike_type": "between", "cap_strike_e8": None}, Reason.NO_STRIKE),
        ({"strike_type": "less", "floor_strike_e8": None}, Reason.NO_STRIKE),
        ({"close_ns": T0 + 4 * S}, Reason.TOO_CLOSE),
    ],
)
def test_market_rules(change: dict[str, Any], reason: Reason) -> None:
    row = warmed(**change).decide(TICKER, T0)
    assert (row.decision, row.reason, row.size) == (Decision.NONE, reason, 0)


def test_unknown_market_and_every_known_market() -> None:
    strategy = warmed()
    assert strategy.decide("KXBTC15M-OTHER", T0).reason is Reason.NO_MARKET
    strategy.market(Market(T0, ticker="KXBTC15M-26AUG190800-00", close_ns=T0 - S))
    rows = strategy.decide_all(T0)
    assert [(r.market, r.reason) for r in rows] == [
        ("KXBTC15M-26AUG190800-00", Reason.MARKET_NOT_OPEN),
        (TICKER, Reason.TRADE),
    ]


def test_trading_paused_and_resumed() -> None:
    strategy = warmed()
    strategy.exchange(T0, trading_active=False)
    assert strategy.decide(TICKER, T0).reason is Reason.TRADING_PAUSED
    strategy.exchange(T0 + 1, trading_active=True)
    strategy.index(T0 + 1, STRIKE + 2_000 * E8)
    assert strategy.decide(TICKER, T0 + 1).decision is Decision.BUY


def test_weekly_maintenance_window_thursday_3_to_5_et() -> None:
    thursday = rfc3339_ns("2026-08-20T07:30:00Z")  # 03:30 EDT

    def at(t: int, params: SignalParams | None = None) -> SignalRow:
        strategy = Strategy(params or SignalParams())
        strategy.market(Market(t - WARM * S, open_ns=t - 300 * S, close_ns=t + 600 * S))
        for k in range(WARM, -1, -1):
            strategy.index(t - k * S, STRIKE + 2_000 * E8 + (k % 2) * 10 * E8)
        strategy.book(TICKER, top(t))
        return strategy.decide(TICKER, t)

    assert at(thursday).reason is Reason.MAINTENANCE
    assert at(rfc3339_ns("2026-08-20T09:00:00Z")).decision is Decision.BUY  # 05:00 EDT: over
    assert at(rfc3339_ns("2026-08-20T06:59:59Z")).decision is Decision.BUY  # 02:59:59 EDT
    assert at(rfc3339_ns("2026-12-17T08:30:00Z")).reason is Reason.MAINTENANCE  # 03:30 EST
    assert at(thursday, SignalParams(maintenance=None)).decision is Decision.BUY


def test_index_rules() -> None:
    strategy = Strategy(SignalParams())
    strategy.market(Market(T0))
    strategy.book(TICKER, top(T0))
    assert strategy.decide(TICKER, T0).reason is Reason.NO_INDEX
    stale = warmed()
    later = T0 + 2 * S + 1  # max_index_age 2 s
    stale.book(TICKER, top(later))
    row = stale.decide(TICKER, later)
    assert (row.reason, row.index_age_ns) == (Reason.INDEX_STALE, 2 * S + 1)
    invalid = warmed()
    invalid.index(T0 + 1, None)  # the replica had no value this tick
    assert invalid.decide(TICKER, T0 + 1).reason is Reason.INDEX_INVALID
    cold = Strategy(SignalParams())
    cold.market(Market(T0 - 10 * S))
    for k in range(10, -1, -1):
        cold.index(T0 - k * S, STRIKE + k * E8)
    cold.book(TICKER, top(T0))
    assert cold.decide(TICKER, T0).reason is Reason.NO_VOL


def test_book_rules() -> None:
    strategy = warmed()
    strategy._books.clear()
    assert strategy.decide(TICKER, T0).reason is Reason.NO_BOOK
    strategy.book(TICKER, top(T0, valid=False))
    row = strategy.decide(TICKER, T0)
    assert (row.reason, row.book_valid) == (Reason.BOOK_INVALID, False)
    strategy.book(TICKER, top(T0, bid=5000, ask=5000))
    assert strategy.decide(TICKER, T0).reason is Reason.BOOK_CROSSED
    strategy.book(TICKER, top(T0 - 31 * S))  # max_book_age 30 s
    strategy.index(T0, STRIKE + 2_000 * E8)
    row = strategy.decide(TICKER, T0)
    assert (row.reason, row.book_age_ns) == (Reason.BOOK_STALE, 31 * S)


def test_inputs_from_the_kalshi_book_and_recorded_index_rows() -> None:
    book = KalshiBook(TICKER)
    book.reset({4000: 30_000}, {5000: 25_000}, yes_scale=False, sid=1, recv_ns=T0)
    assert BookTop.from_quote(T0, book.quote()) == top(T0)
    book.invalidate("gap")
    assert BookTop.from_quote(T0, book.quote()).valid is False
    strategy = warmed()
    strategy.index_row(IndexRow(T0 + 1, "median_mid", 1, None, None, "", "{}", None))
    assert strategy.decide(TICKER, T0 + 1).index_age_ns == 1  # a proxy row is not the index
    strategy.index_row(IndexRow(T0 + 2, BRTI_REPLICA, None, None, None, "", "{}", None))
    assert strategy.decide(TICKER, T0 + 2).reason is Reason.INDEX_INVALID


def test_observed_window_part_drives_the_fair_value() -> None:
    # 30 s to close; the index sat $50 above the strike for the whole first half of the
    # window and is now exactly at it: the average can hardly end below.
    close = T0 + 30 * S
    strategy = Strategy(SignalParams(min_time_to_close_s=1))
    strategy.market(Market(T0 - 100 * S, close_ns=close))
    for k in range(100, -1, -1):
        value = STRIKE + 50 * E8 + (k % 2) * E8 if k > 0 else STRIKE
        strategy.index(T0 - k * S, value)
    strategy.book(TICKER, top(T0))
    row = strategy.decide(TICKER, T0)
    assert row.window_observed == 31  # seconds close-60 .. close-30 (T0 itself)
    assert row.fair_e4 is not None
    assert row.fair_e4 > 9_900
    assert row.time_to_close_ns == 30 * S


def feed(strategy: Strategy, events: list[tuple[int, int | BookTop]]) -> list[SignalRow]:
    """Apply ``(recv_ns, index value or book top)`` inputs in order, deciding after each
    book top."""
    rows = []
    for t, value in events:
        if isinstance(value, BookTop):
            strategy.book(TICKER, value)
            rows.append(strategy.decide(TICKER, t))
        else:
            strategy.index(t, value)
    return rows


def script(shift_after_ns: int | None = None) -> list[tuple[int, int | BookTop]]:
    """Half a minute of index every 200 ms and a book top every 300 ms; with
    ``shift_after_ns``, every input after it is different (index $5,000 lower, asks 0.99)."""
    out: list[tuple[int, int | BookTop]] = []
    for k in range(150):
        t = T0 + k * 200_000_000
        value = STRIKE + (k % 7) * 40 * E8 - 100 * E8
        if shift_after_ns is not None and t > shift_after_ns:
            value -= 5_000 * E8
        out.append((t, value))
        if k % 3 == 2:
            tb = t + 100_000_000
            ask = 4000 + (k % 5) * 500
            if shift_after_ns is not None and tb > shift_after_ns:
                ask = 9900
            out.append((tb, top(tb, bid=ask - 1000, ask=ask)))
    return out


def test_same_inputs_same_order_same_decisions() -> None:
    first = feed(warmed(), script())
    second = feed(warmed(), script())
    assert first == second
    assert {r.reason for r in first} >= {Reason.TRADE, Reason.NO_EDGE}


def test_nothing_after_t_changes_a_decision_at_t() -> None:
    cut = T0 + 15 * S
    base = feed(warmed(), script())
    changed = feed(warmed(), script(shift_after_ns=cut))
    before = [r for r in base if r.recv_ns <= cut]
    assert before == [r for r in changed if r.recv_ns <= cut]
    assert [r for r in base if r.recv_ns > cut] != [r for r in changed if r.recv_ns > cut]


def test_decisions_cannot_be_asked_before_the_inputs_already_fed() -> None:
    strategy = warmed()
    with pytest.raises(ValueError, match="before inputs already fed"):
        strategy.decide(TICKER, T0 - 1)


def test_decisions_record_as_the_signals_table(tmp_path: Path) -> None:
    rows = feed(warmed(), script())
    with SessionWriter.create(tmp_path, "s") as writer:
        for row in rows:
            writer.write(row)
    table = open_session(tmp_path / "s").frame("signals").collect()
    assert table.height == len(rows)
    assert table["reason"].to_list() == [str(r.reason) for r in rows]
    assert table["fair_e4"].to_list() == [r.fair_e4 for r in rows]
    assert set(table["decision"]) == {"buy", "none"}
