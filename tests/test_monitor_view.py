"""The monitor's screen drawn from a given state (no network): what a user reads at 100x30."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from rich.console import Console

from arbkit.core.events import SignalRow
from arbkit.index.rti import USED, RtiResult, VenueDetail
from arbkit.session.monitor_view import (
    MarketLine,
    MonitorState,
    StreamHealth,
    plain_lines,
    render,
    strike_text,
)
from arbkit.session.pipeline import Progress

NOW = 1_796_412_000_000_000_000
LONG_REASON = "invalid: the feed does not vouch for this book (gap, checksum or resync pending)"
S = 1_000_000_000


def _signal(market: str, **fields: object) -> SignalRow:
    base: dict[str, object] = {
        "recv_ns": NOW - S // 2,
        "market": market,
        "series": "KXBTC15M",
        "decision": "none",
        "side": "yes",
        "size": 0,
        "reason": "no_edge",
        "index_e8": 10_000_000_000_000,
        "index_age_ns": 100_000_000,
        "vol_per_s": 1e-4,
        "time_to_close_ns": 600 * S,
        "window_observed": 0,
        "yes_bid_e4": 4_900,
        "yes_bid_size_e2": 10_000,
        "yes_ask_e4": 5_300,
        "yes_ask_size_e2": 5_000,
        "book_age_ns": S,
        "book_valid": True,
        "fair_e4": 5_012,
        "fee_e4": 175,
        "edge_e4": -463,
    }
    base.update(fields)
    return SignalRow(**base)  # type: ignore[arg-type]


def _state(markets: tuple[MarketLine, ...], *, replica: bool = True) -> MonitorState:
    venues = (
        VenueDetail("coinbase", USED, "", Decimal("99987.04"), Decimal("0.11"), 7.43, 0.2, 50, 50),
        VenueDetail("kraken", "excluded", LONG_REASON, None, None, None, 31.0, 0, 0),
    )
    result = RtiResult(
        "BRTI",
        NOW,
        9_999_532_000_000,
        Decimal("99995.32"),
        Decimal(38),
        Decimal("0.1844"),
        ("coinbase",),
        {"kraken": "stale"},
        venues,
    )
    progress = Progress(
        elapsed_s=42.0,
        markets=len(markets),
        valid_books=len(markets),
        ws_connected=True,
        ws_ever_connected=True,
        ws_frames=1_234,
        ws_gaps=1,
        ws_reconnects=0,
        ws_auth_failures=0,
        rest_polls=40,
        spot_venues=2,
        spot_total=2,
        spot_frames=5_000,
        brti_e8=result.value_e8,
        path=Path("/data/recordings/20261204T193416Z-535cdd"),
    )
    return MonitorState(
        now_ns=NOW,
        env="sim",
        series=("KXBTC15M",),
        progress=progress,
        replica=result if replica else None,
        replica_on=True,
        markets=markets,
        health=(
            StreamHealth("kalshi_ws", "yes", 1_234, 0, 1, 0, 0, len(markets), 3.25),
            StreamHealth("kalshi_rest", "-", 40, 0, 0, 2, 0, 0, 14.0),
            StreamHealth("spot (2)", "2/2", 5_000, 3, 0, 0, 1, 2),
        ),
        decisions=120,
        buys=7,
    )


def _line(ticker: str, signal: SignalRow | None, floor: int = 10_000_044_000_000) -> MarketLine:
    return MarketLine(ticker, "greater_or_equal", floor, None, NOW + 605 * S, signal)


def _screen(state: MonitorState, **kw: int) -> str:
    console = Console(record=True, width=100, height=30, color_system=None)
    console.print(render(state, **kw))
    return console.export_text()


def test_the_screen_shows_replica_venues_markets_and_health() -> None:
    buy = _signal(
        "KXBTC15M-26DEC041445-45",
        decision="buy",
        side="no",
        size=100,
        reason="",
        fair_e4=4_482,
        edge_e4=343,
    )
    text = _screen(_state((_line("KXBTC15M-26DEC041445-45", buy),)))
    lines = text.splitlines()
    assert len(lines) <= 30
    assert max(len(line) for line in lines) <= 100
    assert "arbkit monitor  sim  KXBTC15M  " in lines[0]
    assert "session 20261204T193416Z-535cdd" in lines[0]
    assert "BRTI replica  99,995.32" in text
    assert "venues used 1/2" in text
    (coinbase,) = [line for line in lines if line.startswith("coinbase")]
    assert "99,987.04" in coinbase
    assert "used" in coinbase
    (kraken,) = [line for line in lines if line.startswith("kraken")]
    assert "invalid: the feed does not vouch" in kraken
    assert not [line for line in lines if line.startswith(" ") and "│" in line]  # not wrapped
    (market,) = [line for line in lines if line.startswith("KXBTC15M-")]
    # strike, time to close, YES bid, YES ask, fair, edge, book age (now - receipt), signal
    assert market.split() == [
        "KXBTC15M-26DEC041445-45",
        "≥",
        "100,000.44",
        "10:05",
        "0.4900",
        "0.5300",
        "0.4482",
        "+0.0343",
        "1.5",
        "BUY",
        "NO",
        "100",
    ]
    (ws,) = [line for line in lines if line.startswith("kalshi_ws")]
    assert ws.split() == ["kalshi_ws", "yes", "1,234", "0", "1", "0", "0/1", "3.2"]
    (rest,) = [line for line in lines if line.startswith("kalshi_rest")]
    assert rest.split()[-2:] == ["-", "14.0"]
    (spot,) = [line for line in lines if line.startswith("spot (2)")]
    assert spot.split()[-3:] == ["0", "1/2", "-"]
    assert "120 decisions, 7 to buy" in text


def test_a_market_not_traded_says_why_and_one_not_yet_decided_waits() -> None:
    paused = _signal("KXBTC15M-B", reason="trading_paused", fair_e4=None, edge_e4=None)
    text = _screen(_state((_line("KXBTC15M-A", None), _line("KXBTC15M-B", paused))))
    (a,) = [line for line in text.splitlines() if line.startswith("KXBTC15M-A")]
    assert a.split()[4:] == ["-", "-", "-", "-", "-", "waiting"]
    (b,) = [line for line in text.splitlines() if line.startswith("KXBTC15M-B")]
    assert "trading paused" in b
    assert b.split()[4:8] == ["0.4900", "0.5300", "-", "-"]


def test_market_rows_are_capped_to_fit_and_the_rest_counted() -> None:
    def ladder(i: int) -> MarketLine:
        ticker = f"KXBTC-26DEC0415-B{100_125 + 250 * i}"
        row = _signal(ticker, reason="too_close_to_close")
        floor = (100_000 + 250 * i) * 10**8
        return MarketLine(ticker, "between", floor, floor + 24_999_000_000, NOW + S, row)

    text = _screen(_state(tuple(ladder(i) for i in range(12))), max_markets=4)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    shown = [line for line in lines if line.startswith("KXBTC-")]
    assert [line.split()[0] for line in shown] == [ladder(i).ticker for i in range(4)]
    assert shown[0].split()[1] == "100,000-100,249.99"
    assert "markets (12 open;" in text
    assert "... and 8 more" in text


def test_before_the_first_calculation_the_replica_says_so() -> None:
    text = _screen(_state((), replica=False))
    assert "BRTI replica  waiting for the first calculation" in text
    assert "none open yet" in text


def test_strikes_read_as_conditions() -> None:
    def strike(kind: str, floor: int | None, cap: int | None) -> str:
        return strike_text(MarketLine("T", kind, floor, cap, None, None))

    assert strike("greater", 9_712_345_000_000, None) == "> 97,123.45"
    assert strike("between", 9_700_000_000_000, 9_724_999_000_000) == "97,000-97,249.99"
    assert strike("less", None, 9_700_000_000_000) == "< 97,000"
    assert strike("custom", None, None) == "custom"


def test_plain_lines_carry_the_same_figures() -> None:
    row = _signal("KXBTC15M-A")
    first, market = plain_lines(_state((_line("KXBTC15M-A", row),)))
    assert "BRTI 99,995.32" in first
    assert "signals 120 (7 to buy)" in first
    assert market.split() == [
        "KXBTC15M-A",
        "≥",
        "100,000.44",
        "closes",
        "10:05",
        "bid",
        "0.4900",
        "ask",
        "0.5300",
        "fair",
        "0.5012",
        "edge",
        "-0.0463",
        "no",
        "edge",
        "age",
        "1.5",
        "s",
    ]
