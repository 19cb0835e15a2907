"""Crypto.com feeds: the real 2021 v2 capture, documented v1 frames, pu/u gaps, heartbeats."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from arbkit.core.config import Endpoint
from arbkit.core.events import SpotBookRow
from arbkit.core.sink import MemorySink
from arbkit.venues.cryptocom import CryptocomFeed, CryptocomV2Feed
from arbkit.venues.spot import make_feed
from tests.fixtures import cryptofeed_frames

V2_CAPTURE = ("cryptocom", "cryptofeed_v2_book150_band_usdt_2021-11-23.jsonl")
ENDPOINT = Endpoint("ws://127.0.0.1:1/exchange/v1/market", "http://127.0.0.1:1/exchange/v1/public")
S = 1_000_000_000


def e8(value: Any) -> int:
    """Independent decimal -> e8 (via the JSON number's shortest repr, as a person would)."""
    d = Decimal(str(value)) * 100_000_000
    assert d == d.to_integral_value()
    return int(d)


def push(channel: str, data: dict[str, Any], instrument: str = "BTC_USD") -> str:
    """A book push in the shape of the Exchange v1 docs (reference §2.5)."""
    result = {
        "instrument_name": instrument,
        "subscription": f"book.{instrument}.50",
        "channel": channel,
        "depth": 50,
        "data": [data],
    }
    return orjson.dumps({"id": -1, "method": "subscribe", "code": 0, "result": result}).decode()


SNAPSHOT = push(
    "book",
    {
        "asks": [["30082.5", "0.1689", "1"], ["30083.0", "2", "3"]],
        "bids": [["30081.0", "0.5", "2"], ["30080.5", "1.25", "1"]],
        "t": 1654780033786,
        "tt": 1654780033755,
        "u": 542048017824,
    },
)


def delta(pu: int, u: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    data = {"update": {"asks": asks, "bids": bids}, "t": 1647917463003, "tt": 1647917463003}
    data.update(u=u, pu=pu)
    return push("book.update", data)


def subscribed_feed(sink: MemorySink) -> CryptocomFeed:
    feed = make_feed("cryptocom", ENDPOINT, sink)
    assert isinstance(feed, CryptocomFeed)
    feed.on_open(1, 100 * S)
    feed.on_timer(101 * S)
    feed.take_outgoing()
    return feed


def test_subscribes_one_second_after_connecting() -> None:
    feed = make_feed("cryptocom", ENDPOINT, MemorySink())
    assert feed.url() == ENDPOINT.ws
    assert feed.urls.rest == ENDPOINT.rest + "/get-book?instrument_name=BTC_USD&depth=50"
    feed.on_open(1, 100 * S)
    assert feed.take_outgoing() == []
    feed.on_timer(100 * S + 999_999_999)
    assert feed.take_outgoing() == []
    feed.on_timer(101 * S)
    assert [orjson.loads(t) for t in feed.take_outgoing()] == [
        {
            "id": 1,
            "method": "subscribe",
            "params": {
                "channels": ["book.BTC_USD.50"],
                "book_subscription_type": "SNAPSHOT_AND_UPDATE",
                "book_update_frequency": 10,
            },
            "nonce": 101_000,
        }
    ]
    feed.on_timer(102 * S)
    assert feed.take_outgoing() == []


def test_heartbeat_reply_is_exact() -> None:
    feed = subscribed_feed(MemorySink())
    feed.on_message('{"id":1587523073344,"method":"public/heartbeat","code":0}', 1)
    assert feed.take_outgoing() == ['{"id":1587523073344,"method":"public/respond-heartbeat"}']


def test_snapshot_then_chained_deltas() -> None:
    sink = MemorySink()
    feed = subscribed_feed(sink)
    feed.on_message('{"id":1,"method":"subscribe","code":0}', 1)
    feed.on_message(SNAPSHOT, 2)
    book = feed.books["BTC_USD"]
    assert book.valid
    assert book.top(5) == (
        [(3008100000000, 50000000), (3008050000000, 125000000)],
        [(3008250000000, 16890000), (3008300000000, 200000000)],
    )
    feed.on_message(delta(542048017824, 542048017830, [["30081.0", "0", "0"]], []), 3)
    feed.on_message(delta(542048017830, 542048017831, [], []), 4)  # empty keep-alive delta
    feed.on_message(delta(542048017831, 542048017840, [], [["30082.0", "3", "1"]]), 5)
    assert book.top(1) == ([(3008050000000, 125000000)], [(3008200000000, 300000000)])
    rows = [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]
    assert rows[-1] == SpotBookRow(
        5, 1647917463003 * 1_000_000, "cryptocom", "BTC_USD", "ask", 3008200000000, 300000000,
        False, 542048017840, None, 1,
    )  # fmt: skip
    assert rows[0].exch_ns == 1654780033786 * 1_000_000
    assert rows[0].seq == 542048017824
    assert sink.rows["events"] == []


def test_pu_gap_is_caught_and_resynced_by_subscribing_again() -> None:
    sink = MemorySink()
    feed = subscribed_feed(sink)
    book = feed.books["BTC_USD"]
    feed.on_message(SNAPSHOT, 1)
    feed.on_message(delta(542048017824, 542048017830, [], [["30082.0", "1", "1"]]), 2)
    feed.on_message(delta(542048017835, 542048017840, [], [["30081.5", "1", "1"]]), 3)  # lost
    [gap] = sink.events("gap")
    assert (gap.subject, gap.expected, gap.got) == ("BTC_USD", 542048017830, 542048017835)
    assert not book.valid
    assert feed.reconnect_reason is None  # resubscribing is enough
    [resub] = [orjson.loads(t) for t in feed.take_outgoing()]
    assert resub["method"] == "subscribe"
    assert resub["params"]["channels"] == ["book.BTC_USD.50"]
    assert resub["params"]["book_subscription_type"] == "SNAPSHOT_AND_UPDATE"
    assert 3008150000000 not in book.asks
    feed.on_message(delta(542048017840, 542048017841, [], [["30081.6", "1", "1"]]), 4)
    assert len(sink.events("gap")) == 1  # deltas before the new snapshot are skipped
    assert feed.take_outgoing() == []
    feed.on_message(SNAPSHOT, 5)
    assert book.valid
    assert [e.detail for e in sink.events("resync")][-1] == "snapshot applied"
    assert 3008200000000 not in book.asks  # the snapshot replaced everything
    feed.on_message(delta(542048017824, 542048017900, [["30081.0", "7", "1"]], []), 6)
    assert book.bids.sizes[3008100000000] == 700000000


def test_repeated_delta_is_a_duplicate_not_a_gap() -> None:
    sink = MemorySink()
    feed = subscribed_feed(sink)
    feed.on_message(SNAPSHOT, 1)
    repeated = delta(542048017824, 542048017830, [], [["30082.0", "1", "1"]])
    feed.on_message(repeated, 2)
    feed.on_message(repeated, 3)
    feed.on_message(delta(542048017830, 542048017831, [], []), 4)
    assert sink.event_kinds() == ["duplicate"]
    assert feed.books["BTC_USD"].valid
    assert feed.take_outgoing() == []


def test_unanswered_resync_escalates_to_reconnect() -> None:
    feed = subscribed_feed(MemorySink())
    feed.on_message(SNAPSHOT, 101 * S)
    feed.on_message(delta(542048017800, 542048017999, [], []), 102 * S)
    assert feed.reconnect_reason is None
    feed.on_timer(118 * S)
    assert feed.reconnect_reason
    assert "no BTC_USD snapshot" in feed.reconnect_reason


def test_refused_subscription_is_recorded() -> None:
    sink = MemorySink()
    feed = subscribed_feed(sink)
    feed.on_message('{"id":1,"method":"subscribe","code":40003,"message":"bad channel"}', 1)
    [err] = sink.events("error")
    assert err.detail == "subscribe refused: code 40003 bad channel"


def test_crossed_book_flagged() -> None:
    sink = MemorySink()
    feed = subscribed_feed(sink)
    feed.on_message(SNAPSHOT, 1)
    feed.on_message(delta(542048017824, 542048017825, [["30090", "1", "1"]], []), 2)
    assert sink.event_kinds() == ["crossed"]
    assert not feed.books["BTC_USD"].view().valid


def test_legacy_v2_capture_each_frame_is_the_whole_book() -> None:
    frames = cryptofeed_frames(*V2_CAPTURE)
    sink = MemorySink()
    feed = CryptocomV2Feed(Endpoint("ws://127.0.0.1:1/v2/market", ""), sink, symbol="BAND_USDT")
    feed.on_open(1, 0)
    feed.on_timer(S)
    [sub] = [orjson.loads(t) for t in feed.take_outgoing()]
    assert sub["params"] == {"channels": ["book.BAND_USDT.150"]}
    book = feed.books["BAND_USDT"]
    books = 0
    for recv_ns, text in frames:
        feed.on_message(text, recv_ns)
        msg = orjson.loads(text)
        if "result" in msg:
            books += 1
            data = msg["result"]["data"][0]
            # Each frame replaces the book: it equals exactly that frame's levels.
            assert book.top(None) == (
                sorted(((e8(p), e8(q)) for p, q, _ in data["bids"]), reverse=True),
                sorted((e8(p), e8(q)) for p, q, _ in data["asks"]),
            )
    assert books == 20
    assert sink.rows["events"] == []
    last = orjson.loads(frames[-1][1])["result"]["data"][0]
    assert (book.best_bid, book.best_ask) == (e8(last["bids"][0][0]), e8(last["asks"][0][0]))
    assert book.top(1) == ([(752480000, 726000000)], [(753170000, 33199000000)])
    assert book_exch_ns(sink) == last["t"] * 1_000_000


def book_exch_ns(sink: MemorySink) -> int | None:
    rows = [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]
    return rows[-1].exch_ns


@pytest.mark.parametrize("text", ['{"method":"public/heartbeat"}', '{"result":{"channel":"book"}}'])
def test_malformed_frames_are_recorded(text: str) -> None:
    sink = MemorySink()
    feed = subscribed_feed(sink)
    feed.on_message(text, 1)
    assert sink.events("malformed")
