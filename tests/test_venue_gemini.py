"""Gemini feeds: the real v2 capture replayed, documented v1/v3 frames, gaps and resyncs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError
from arbkit.core.events import SpotBookRow
from arbkit.core.sink import MemorySink
from arbkit.venues.gemini import GeminiFeed, GeminiV2Feed, GeminiV3Feed
from arbkit.venues.spot import make_feed
from tests.fixtures import cryptofeed_frames

V2_CAPTURE = ("gemini", "cryptofeed_v2_l2_btcusd_2026-08-09.jsonl")
ENDPOINT = Endpoint("ws://127.0.0.1:1/v1/marketdata", "http://127.0.0.1:1/v1")
S = 1_000_000_000


def e8(text: str) -> int:
    """An independent decimal -> e8 conversion (Decimal, not the code under test)."""
    value = Decimal(text) * 100_000_000
    assert value == value.to_integral_value()
    return int(value)


def book_rows(sink: MemorySink) -> list[SpotBookRow]:
    return [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]


def v1_feed(sink: MemorySink) -> GeminiFeed:
    feed = make_feed("gemini", ENDPOINT, sink)
    assert isinstance(feed, GeminiFeed)
    feed.on_open(1, 0)
    return feed


def frame(obj: Any) -> str:
    return orjson.dumps(obj).decode()


# Frames in the shape of Gemini's v1 asyncapi examples (reference §2.4a).
V1_INITIAL = frame(
    {
        "type": "update",
        "eventId": 36902233000,
        "socket_sequence": 0,
        "events": [
            {
                "type": "change",
                "reason": "initial",
                "price": "54350.40",
                "delta": "0.5",
                "remaining": "0.5",
                "side": "bid",
            },
            {
                "type": "change",
                "reason": "initial",
                "price": "54340.00",
                "delta": "1.25",
                "remaining": "1.25",
                "side": "bid",
            },
            {
                "type": "change",
                "reason": "initial",
                "price": "54360.10",
                "delta": "2",
                "remaining": "2",
                "side": "ask",
            },
        ],
    }
)


def v1_update(seq: int, changes: list[tuple[str, str, str]], ms: int = 1619769673527) -> str:
    return frame(
        {
            "type": "update",
            "eventId": 36902233362 + seq,
            "timestamp": ms // 1000,
            "timestampms": ms,
            "socket_sequence": seq,
            "events": [
                {
                    "type": "change",
                    "side": side,
                    "price": price,
                    "remaining": remaining,
                    "delta": remaining,
                    "reason": "place",
                }
                for side, price, remaining in changes
            ],
        }
    )


def v1_heartbeat(seq: int) -> str:
    return frame({"type": "heartbeat", "socket_sequence": seq})


def test_v1_url_registry_and_one_symbol_rule() -> None:
    feed = v1_feed(MemorySink())
    assert feed.url() == "ws://127.0.0.1:1/v1/marketdata/BTCUSD?heartbeat=true"
    assert feed.urls.rest == "http://127.0.0.1:1/v1/book/btcusd?limit_bids=0&limit_asks=0"
    assert feed.take_outgoing() == []  # the URL is the subscription
    with pytest.raises(ConfigError, match="one symbol per connection"):
        make_feed("gemini", ENDPOINT, MemorySink(), symbol=["BTCUSD", "ETHUSD"])


def test_v1_initial_book_then_changes_with_venue_time() -> None:
    sink = MemorySink()
    feed = v1_feed(sink)
    book = feed.books["BTCUSD"]
    assert not book.valid
    feed.on_message(V1_INITIAL, 10)
    assert book.valid
    assert book.top(5) == (
        [(5435040000000, 50000000), (5434000000000, 125000000)],
        [(5436010000000, 200000000)],
    )
    feed.on_message(v1_heartbeat(1), 11)
    feed.on_message(v1_update(2, [("bid", "54350.40", "0"), ("ask", "54355.00", "0.002")]), 12)
    assert book.top(5) == (
        [(5434000000000, 125000000)],
        [(5435500000000, 200000), (5436010000000, 200000000)],
    )
    rows = book_rows(sink)
    assert [r.is_snapshot for r in rows] == [True, True, True, False, False]
    assert rows[-1] == SpotBookRow(
        12, 1619769673527 * 1_000_000, "gemini", "BTCUSD", "ask", 5435500000000, 200000,
        False, 2, None, 1,
    )  # fmt: skip
    assert rows[0].exch_ns is None  # the initial update carries no timestamp
    assert sink.events("gap") == []


def test_v1_socket_sequence_gap_is_caught_and_resynced_by_reconnecting() -> None:
    sink = MemorySink()
    feed = v1_feed(sink)
    book = feed.books["BTCUSD"]
    feed.on_message(V1_INITIAL, 10)
    feed.on_message(v1_heartbeat(1), 11)
    feed.on_message(v1_update(3, [("ask", "54355.00", "1")]), 12)  # 2 was lost
    [gap] = sink.events("gap")
    assert (gap.subject, gap.expected, gap.got, gap.recv_ns) == ("BTCUSD", 2, 3, 12)
    assert not book.valid
    assert feed.reconnect_reason
    assert "gap" in feed.reconnect_reason
    assert 5435500000000 not in book.asks  # the frame after the gap is not applied
    feed.on_message(v1_update(4, [("ask", "54356.00", "1")]), 13)  # ignored until reconnect
    assert len(sink.events("gap")) == 1
    assert 5435600000000 not in book.asks
    # The runner closes and reconnects; numbering restarts at 0 with a new initial book.
    feed.reconnect_reason = None
    feed.on_close(14, "resync BTCUSD")
    feed.on_open(2, 15)
    feed.on_message(V1_INITIAL, 16)
    assert book.valid
    assert [e.detail for e in sink.events("resync")] == [
        "requested: gap: expected 2, got 3",
        "snapshot applied",
    ]
    feed.on_message(v1_heartbeat(1), 17)
    assert len(sink.events("gap")) == 1


def test_v1_repeated_frame_is_a_duplicate_not_a_gap() -> None:
    sink = MemorySink()
    feed = v1_feed(sink)
    feed.on_message(V1_INITIAL, 10)
    update = v1_update(1, [("ask", "54355.00", "1")])
    feed.on_message(update, 11)
    feed.on_message(update, 12)
    feed.on_message(v1_heartbeat(2), 13)
    assert sink.event_kinds() == ["duplicate"]
    assert feed.books["BTCUSD"].valid
    assert feed.reconnect_reason is None


def test_v1_first_update_is_the_book_even_when_empty() -> None:
    sink = MemorySink()
    feed = v1_feed(sink)
    feed.on_message('{"type":"update","eventId":5,"socket_sequence":0,"events":[]}', 1)
    book = feed.books["BTCUSD"]
    assert book.valid
    assert (book.best_bid, book.best_ask) == (None, None)
    feed.on_message(v1_update(1, [("bid", "54350.40", "0.5")]), 2)
    assert book.top(1) == ([(5435040000000, 50000000)], [])
    assert [r.is_snapshot for r in book_rows(sink)] == [True, False]


def test_v1_crossed_and_stale_flags() -> None:
    sink = MemorySink()
    feed = v1_feed(sink)
    book = feed.books["BTCUSD"]
    feed.on_message(V1_INITIAL, 1 * S)
    feed.on_message(v1_update(1, [("bid", "54370.00", "0.1")]), 2 * S)  # above the best ask
    [crossed] = sink.events("crossed")
    assert crossed.subject == "BTCUSD"
    assert not book.view().valid
    feed.on_message(v1_update(2, [("bid", "54370.00", "0")]), 3 * S)
    assert book.view().valid
    feed.on_timer(12 * S)
    assert not book.stale
    feed.on_timer(14 * S)
    [stale] = sink.events("stale")
    assert book.stale
    assert stale.subject == "BTCUSD"


def test_v2_real_capture_replays_to_the_independently_computed_book() -> None:
    frames = cryptofeed_frames(*V2_CAPTURE)
    # Independent book: plain dicts of Decimal strings from the raw changes.
    ref: dict[str, dict[str, str]] = {"buy": {}, "sell": {}}
    first_changes = 0
    for _, text in frames:
        msg = orjson.loads(text)
        if msg["type"] != "l2_updates":
            continue
        if "auction_events" in msg:
            first_changes = len(msg["changes"])
            ref = {"buy": {}, "sell": {}}
        for side, price, qty in msg["changes"]:
            levels = ref[side]
            if Decimal(qty):
                levels[price] = qty
            else:
                levels.pop(price, None)
    assert first_changes == 4995
    best_bid = max(ref["buy"], key=Decimal)
    best_ask = min(ref["sell"], key=Decimal)

    sink = MemorySink()
    feed = GeminiV2Feed(Endpoint("ws://127.0.0.1:1/v2/marketdata", ""), sink, symbol="BTCUSD")
    feed.on_open(1, 0)
    assert orjson.loads(feed.take_outgoing()[0]) == {
        "type": "subscribe",
        "subscriptions": [{"name": "l2", "symbols": ["BTCUSD"]}],
    }
    assert feed.url() == "ws://127.0.0.1:1/v2/marketdata"
    for recv_ns, text in frames:
        feed.on_message(text, recv_ns)
    book = feed.books["BTCUSD"]
    assert book.valid
    assert sink.rows["events"] == []  # no malformed frame, nothing crossed
    assert (book.best_bid, book.best_ask) == (e8(best_bid), e8(best_ask))
    assert (book.best_bid, book.best_ask) == (6520628000000, 6520629000000)
    assert book.bids.sizes[e8(best_bid)] == e8(ref["buy"][best_bid])
    assert len(book.bids) == len(ref["buy"])
    assert len(book.asks) == len(ref["sell"])
    rows = book_rows(sink)
    assert sum(r.is_snapshot for r in rows) == 4995
    assert all(r.exch_ns is None and r.seq is None for r in rows)


def v3_frame(first: int, last: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    return frame(
        {
            "e": "depthUpdate",
            "E": 1_785_000_000_123_456_789 + last,
            "s": "BTCUSD",
            "U": first,
            "u": last,
            "b": bids,
            "a": asks,
        }
    )


def test_v3_depth_updates_chain_by_update_ids() -> None:
    sink = MemorySink()
    feed = GeminiV3Feed(Endpoint("ws://127.0.0.1:1/", ""), sink)
    assert feed.url() == "ws://127.0.0.1:1?snapshot=-1"
    feed.on_open(1, 0)
    assert orjson.loads(feed.take_outgoing()[0]) == {
        "method": "SUBSCRIBE",
        "params": ["btcusd@depth@100ms"],
        "id": 1,
    }
    book = feed.books["BTCUSD"]
    feed.on_message(v3_frame(1, 100, [["65000.5", "1"]], [["65001", "2"]]), 1)
    assert book.valid
    assert book_rows(sink)[0].exch_ns == 1_785_000_000_123_456_889
    feed.on_message(v3_frame(101, 105, [["65000.5", "0"], ["64999", "3"]], []), 2)
    assert book.top(3) == ([(6499900000000, 300000000)], [(6500100000000, 200000000)])
    feed.on_message(v3_frame(103, 105, [["64999", "9"]], []), 3)  # already applied
    assert sink.event_kinds() == ["duplicate"]
    assert book.bids.sizes[6499900000000] == 300000000
    feed.on_message(v3_frame(108, 110, [], [["65002", "1"]]), 4)  # 106..107 lost
    [gap] = sink.events("gap")
    assert (gap.expected, gap.got) == (106, 108)
    assert not book.valid
    assert feed.reconnect_reason
    feed.on_message(v3_frame(111, 112, [], [["65003", "1"]]), 5)
    assert 6500300000000 not in book.asks
    feed.on_close(6, "resync")
    feed.on_open(2, 7)
    feed.on_message(v3_frame(200, 250, [["64000", "1"]], [["66000", "1"]]), 8)
    assert book.valid
    assert book.top(5) == ([(6400000000000, 100000000)], [(6600000000000, 100000000)])


def test_v3_keepalive_ping_every_30_seconds() -> None:
    feed = GeminiV3Feed(Endpoint("ws://127.0.0.1:1", ""), MemorySink())
    feed.on_open(1, 0)
    feed.take_outgoing()
    feed.on_timer(29 * S)
    assert feed.take_outgoing() == []
    feed.on_timer(30 * S)
    assert [orjson.loads(t) for t in feed.take_outgoing()] == [{"method": "ping", "id": 2}]


def test_malformed_v1_frame_is_recorded_and_resynced() -> None:
    sink = MemorySink()
    feed = v1_feed(sink)
    feed.on_message(V1_INITIAL, 1)
    feed.on_message('{"type":"update","socket_sequence":1,"events":[{"type":"change"}]}', 2)
    assert sink.event_kinds()[:2] == ["malformed", "resync"]
    assert not feed.books["BTCUSD"].valid
    feed.on_message("not json", 3)
    assert sink.events("malformed")[-1].detail.startswith("not JSON")


def test_v2_unreadable_frame_resyncs_but_v1_waits_for_the_sequence() -> None:
    sink = MemorySink()
    v2 = GeminiV2Feed(Endpoint("ws://127.0.0.1:1/v2/marketdata", ""), sink)
    v2.on_open(1, 0)
    v2.on_message(
        '{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","1","1"]],"auction_events":[]}',
        1,
    )
    assert v2.books["BTCUSD"].valid
    v2.on_message('{"type":"l2_upd', 2)
    assert sink.event_kinds() == ["malformed", "resync"]
    assert not v2.books["BTCUSD"].valid
    sink = MemorySink()
    v1 = v1_feed(sink)
    v1.on_message(V1_INITIAL, 1)
    v1.on_message('{"type":"upd', 2)  # was socket_sequence 1: the next frame reveals it
    assert sink.event_kinds() == ["malformed"]
    v1.on_message(v1_heartbeat(2), 3)
    assert sink.event_kinds() == ["malformed", "gap", "resync"]
