"""Bullish ``l2Orderbook``: documented frames, sequence-range gaps, keepalive."""

from __future__ import annotations

from typing import Any

import orjson

from arbkit.core.config import Endpoint
from arbkit.core.events import SpotBookRow
from arbkit.core.sink import MemorySink
from arbkit.venues.bullish import BullishFeed
from arbkit.venues.spot import make_feed

ENDPOINT = Endpoint(
    "ws://127.0.0.1:1/trading-api/v1/market-data/orderbook", "http://127.0.0.1:1/trading-api/v1"
)
S = 1_000_000_000


def l2(kind: str, first: int, last: int, bids: list[str], asks: list[str]) -> str:
    """A ``V1TALevel2`` frame in the reference's shape (§2.6)."""
    data: dict[str, Any] = {
        "symbol": "BTCUSDC",
        "bids": bids,
        "asks": asks,
        "timestamp": "1777035859490",
        "datetime": "2026-04-24T13:04:19.490Z",
        "publishedAtTimestamp": "1777035860092",
        "sequenceNumberRange": [first, last],
    }
    return orjson.dumps({"type": kind, "dataType": "V1TALevel2", "data": data}).decode()


SNAPSHOT = l2(
    "snapshot",
    428371450,
    428371450,
    ["94500.1900", "0.56338940", "94489.0000", "0.53700000"],
    ["94510.0000", "1.00000000"],
)


def feed_with_snapshot(sink: MemorySink) -> BullishFeed:
    feed = make_feed("bullish", ENDPOINT, sink)
    assert isinstance(feed, BullishFeed)
    feed.on_open(1, 0)
    feed.take_outgoing()
    feed.on_message(SNAPSHOT, 1)
    return feed


def test_subscribe_command_and_urls() -> None:
    feed = make_feed("bullish", ENDPOINT, MemorySink())
    assert feed.url() == ENDPOINT.ws
    assert feed.urls.rest == ENDPOINT.rest + "/markets/BTCUSDC/orderbook/hybrid"
    feed.on_open(1, 0)
    assert feed.take_outgoing() == [
        '{"jsonrpc":"2.0","type":"command","method":"subscribe","id":"1",'
        '"params":{"topic":"l2Orderbook","symbol":"BTCUSDC"}}'
    ]


def test_keepalive_ping_within_the_idle_limit() -> None:
    feed = make_feed("bullish", ENDPOINT, MemorySink())
    feed.on_open(1, 0)
    feed.take_outgoing()
    feed.on_timer(29 * S)
    assert feed.take_outgoing() == []
    feed.on_timer(30 * S)
    assert feed.take_outgoing() == [
        '{"jsonrpc":"2.0","type":"command","method":"keepalivePing","id":"2"}'
    ]
    feed.on_timer(59 * S)
    assert feed.take_outgoing() == []
    feed.on_timer(60 * S)
    assert len(feed.take_outgoing()) == 1


def test_snapshot_and_updates_from_flat_arrays() -> None:
    sink = MemorySink()
    feed = feed_with_snapshot(sink)
    book = feed.books["BTCUSDC"]
    assert book.valid
    assert book.top(5) == (
        [(9450019000000, 56338940), (9448900000000, 53700000)],
        [(9451000000000, 100000000)],
    )
    feed.on_message(
        l2("update", 428371451, 428371453, ["94500.1900", "0.00000000"], ["94505.5", "0.25"]), 2
    )
    assert book.top(5) == (
        [(9448900000000, 53700000)],
        [(9450550000000, 25000000), (9451000000000, 100000000)],
    )
    rows = [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]
    assert rows[-1] == SpotBookRow(
        2, 1777035859490 * 1_000_000, "bullish", "BTCUSDC", "ask", 9450550000000, 25000000,
        False, 428371453, None, 1,
    )  # fmt: skip
    assert sink.rows["events"] == []


def test_sequence_range_gap_is_caught_and_resynced_by_reconnecting() -> None:
    sink = MemorySink()
    feed = feed_with_snapshot(sink)
    book = feed.books["BTCUSDC"]
    feed.on_message(l2("update", 428371451, 428371451, [], ["94511", "1"]), 2)
    feed.on_message(l2("update", 428371451, 428371451, [], ["94512", "1"]), 3)  # replayed
    assert sink.event_kinds() == ["duplicate"]
    assert 9451200000000 not in book.asks
    feed.on_message(l2("update", 428371455, 428371460, [], ["94513", "1"]), 4)  # 452..454 lost
    [gap] = sink.events("gap")
    assert (gap.subject, gap.expected, gap.got) == ("BTCUSDC", 428371452, 428371455)
    assert not book.valid
    assert feed.reconnect_reason
    assert "gap" in feed.reconnect_reason
    assert 9451300000000 not in book.asks
    feed.on_close(5, "resync")
    feed.on_open(2, 6)
    feed.on_message(SNAPSHOT, 7)
    assert book.valid
    assert sink.events("resync")[-1].detail == "snapshot applied"
    feed.on_message(l2("update", 428371451, 428371451, [], ["94511", "2"]), 8)
    assert book.asks.sizes[9451100000000] == 200000000


def test_odd_flat_array_is_malformed_and_resynced() -> None:
    sink = MemorySink()
    feed = feed_with_snapshot(sink)
    feed.on_message(l2("update", 428371451, 428371451, ["94500"], []), 2)
    [bad] = sink.events("malformed")
    assert "odd length 1" in bad.detail
    assert not feed.books["BTCUSDC"].valid


def test_command_error_recorded_and_heartbeats_ignored() -> None:
    sink = MemorySink()
    feed = feed_with_snapshot(sink)
    feed.on_message('{"type":"heartbeat","dataType":"V1TAHeartbeat","data":{}}', 2)
    feed.on_message('{"jsonrpc":"2.0","id":"1","error":{"code":400,"message":"bad symbol"}}', 3)
    [err] = sink.events("error")
    assert "bad symbol" in err.detail
    assert feed.books["BTCUSDC"].valid
