"""The ``kalshi_markets`` table: one row per market state discovery sees, from Kalshi's fields."""

from __future__ import annotations

from datetime import UTC, datetime

from arbkit.core.events import KalshiMarketRow
from arbkit.core.sink import MemorySink
from arbkit.venues.kalshi.discovery import PENDING_TERMS_S, MarketDiscovery, market_row
from arbkit.venues.kalshi.markets import Market
from arbkit.venues.kalshi.rest import KalshiRest
from tests.test_kalshi_rest import Stub, market_obj
from tests.test_kalshi_rest_poller import _close, client, sink, stub

__all__ = ["client", "sink", "stub"]  # fixtures


def market_rows(sink: MemorySink) -> list[KalshiMarketRow]:
    return [r for r in sink.rows["kalshi_markets"] if isinstance(r, KalshiMarketRow)]


async def test_a_row_per_state_change_with_strikes_and_times_from_the_fields(
    stub: Stub, client: KalshiRest, sink: MemorySink
) -> None:
    # The ticker says 90000 and 17:00; the fields say otherwise, and the fields win.
    stub.markets = [
        market_obj(
            "KXBTC15M-26NOV241700-00",
            open_time="2026-11-24T21:45:00Z",
            close_time=_close(10),
            strike_type="greater_or_equal",
            floor_strike=91234.56,
            title="BTC price up in next 15 mins?",
        )
    ]
    discovery = MarketDiscovery(client, ("KXBTC15M",))
    await discovery.refresh()
    await discovery.refresh()  # nothing changed: no second row
    (row,) = market_rows(sink)
    assert row.ticker == "KXBTC15M-26NOV241700-00"
    assert row.event_ticker == "KXBTC15M-26NOV241700"
    assert row.series == "KXBTC15M"
    assert row.title == "BTC price up in next 15 mins?"
    assert row.strike_type == "greater_or_equal"
    assert row.floor_strike_e8 == 9_123_456_000_000
    assert row.cap_strike_e8 is None
    assert row.open_ns == int(datetime(2026, 11, 24, 21, 45, tzinfo=UTC).timestamp()) * 10**9
    assert row.status == "active"
    assert row.result == ""
    assert row.expiration_value_e8 is None

    # A revised strike is a state change; the ticker still says nothing.
    stub.markets[0].update(floor_strike=91300.01)
    await discovery.refresh()
    last = market_rows(sink)[-1]
    assert len(market_rows(sink)) == 2
    assert last.floor_strike_e8 == 9_130_001_000_000
    assert last.recv_ns >= row.recv_ns


def test_a_settled_market_row_carries_its_result_and_expiration_value() -> None:
    obj = market_obj(
        "KXBTC15M-26NOV241700-00",
        status="settled",
        result="no",
        expiration_value="91299.99",
        expected_expiration_time="2026-11-24T22:05:00Z",
    )
    row = market_row(Market.from_api(obj), 7)
    assert row.recv_ns == 7
    assert row.result == "no"
    assert row.expiration_value_e8 == 9_129_999_000_000
    assert row.expiration_ns == int(datetime(2026, 11, 24, 22, 5, tzinfo=UTC).timestamp()) * 10**9


async def test_a_live_market_without_its_strike_is_listed_again_soon(
    stub: Stub, client: KalshiRest, sink: MemorySink
) -> None:
    obj = market_obj("KXBTC15M-26NOV241700-00", close_time=_close(10), floor_strike=None)
    stub.markets = [obj]
    discovery = MarketDiscovery(client, ("KXBTC15M",), interval=30.0)
    await discovery.refresh()
    assert discovery.next_delay() <= PENDING_TERMS_S
    obj["floor_strike"] = 95000
    await discovery.refresh()
    assert discovery.next_delay() > PENDING_TERMS_S
    assert [r.floor_strike_e8 for r in market_rows(sink)] == [None, 9_500_000_000_000]


async def test_after_its_close_a_market_gets_a_row_with_its_result(
    stub: Stub, client: KalshiRest, sink: MemorySink
) -> None:
    obj = market_obj("KXBTC15M-26NOV241700-00", close_time=_close(-1))
    stub.markets = [obj]
    discovery = MarketDiscovery(client, ("KXBTC15M",))
    await discovery.refresh()  # listed, but past its close: awaiting a result
    assert discovery.markets == {}
    obj.update(status="finalized", result="yes", expiration_value="90123.45")
    await discovery.refresh()
    await discovery.refresh()  # the result is known: nothing more to record
    rows = market_rows(sink)
    assert [r.status for r in rows] == ["active", "finalized"]
    assert rows[-1].result == "yes"
    assert rows[-1].expiration_value_e8 == 9_012_345_000_000
