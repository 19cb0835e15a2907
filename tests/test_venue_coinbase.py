"""Coinbase feeds on real captures and documented frames: book states, gaps, flags, resync."""

from __future__ import annotations

import orjson
import pytest

from arbkit.core.book import BookView
from arbkit.core.clock import rfc3339_ns
from arbkit.core.config import Endpoint
from arbkit.core.events import SpotBookRow
from arbkit.core.sink import MemorySink
from arbkit.venues.coinbase import CoinbaseExchangeFeed, CoinbaseFeed, parse_rest_book
from arbkit.venues.spot import make_feed, spot
from tests.fixtures import cryptofeed_frames, real_fixture

AT = ("coinbase", "cryptofeed_advanced_trade_btcusd_ethusd_2026-08-09.jsonl")
ENDPOINT = Endpoint("ws://127.0.0.1:1/ws", "http://127.0.0.1:1/api/v3/brokerage")


def _feed(sink: MemorySink, t_ns: int = 0, **kw: object) -> CoinbaseFeed:
    feed = make_feed("coinbase", ENDPOINT, sink, symbol=["BTC-USD", "ETH-USD"], **kw)
    assert isinstance(feed, CoinbaseFeed)
    feed.on_open(1, t_ns)
    return feed


def _ticker_agreement(feed: CoinbaseFeed, frames: list[tuple[int, str]]) -> tuple[int, int]:
    """Replay frames; count the ticker frames whose best bid/ask the book reproduces."""
    agree = total = 0
    for recv_ns, text in frames:
        feed.on_message(text, recv_ns)
        msg = orjson.loads(text)
        if msg["channel"] != "ticker":
            continue
        for ticker in (t for ev in msg["events"] for t in ev["tickers"]):
            book = feed.books[ticker["product_id"]]
            if book.valid:
                total += 1
                best = (spot(ticker["best_bid"]), spot(ticker["best_ask"]))
                agree += (book.best_bid, book.best_ask) == best
    return agree, total


def test_subscribes_level2_and_heartbeats() -> None:
    feed = _feed(MemorySink())
    assert [orjson.loads(t) for t in feed.take_outgoing()] == [
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "heartbeats"},
    ]
    assert feed.url() == ENDPOINT.ws
    assert feed.urls.rest == ENDPOINT.rest + "/market/product_book?product_id=BTC-USD&limit=1000"
    assert feed.stream == "coinbase"


def test_replaying_the_advanced_trade_capture_reproduces_the_ticker() -> None:
    sink = MemorySink()
    feed = _feed(sink)
    assert _ticker_agreement(feed, cryptofeed_frames(*AT)) == (31, 32)  # README: 31 of 32
    assert not sink.events("gap")
    btc = feed.books["BTC-USD"]
    assert btc.valid
    assert not btc.crossed
    assert (btc.best_bid, btc.best_ask) == (spot("65083.66"), spot("65083.67"))
    rows = [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]
    snapshot = [r for r in rows if r.is_snapshot and r.symbol == "BTC-USD"]
    assert len(snapshot) == 100  # the capture's snapshot was trimmed to 50 + 50 levels
    assert snapshot[0].seq == 13
    assert snapshot[0].exch_ns == 1_786_309_548_483_587_501
    assert all(r.checksum_ok is None and r.conn_id == 1 for r in rows)
    assert len(sink.events("subscribed")) == 5


def test_documented_snapshot_and_update_shapes() -> None:
    sink = MemorySink()
    feed = _feed(sink)
    doc = (
        '{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z",'
        '"sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":['
        '{"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"21921.73",'
        '"new_quantity":"0.06317902"},{"side":"offer","event_time":"1970-01-01T00:00:00Z",'
        '"price_level":"21921.74","new_quantity":"0.02"}]}]}'
    )
    feed.on_message(doc, 5)
    update = doc.replace('"sequence_num":0', '"sequence_num":1').replace("snapshot", "update")
    update = update.replace('"0.06317902"', '"0"')
    feed.on_message(update, 6)
    book = feed.books["BTC-USD"]
    assert book.bids.top() == []
    assert book.asks.top() == [(2_192_174_000_000, 2_000_000)]
    assert feed.view() == BookView("coinbase", (), ((2_192_174_000_000, 2_000_000),), 6, True)
    last = sink.rows["spot_book"][-1]
    assert last == SpotBookRow(
        6, 1_675_974_770_714_964_855, "coinbase", "BTC-USD", "ask", 2_192_174_000_000,
        2_000_000, False, 1, None, 1,
    )  # fmt: skip


def test_a_sequence_gap_invalidates_and_resyncs_by_reconnecting() -> None:
    frames = cryptofeed_frames(*AT)
    sink = MemorySink()
    feed = _feed(sink)
    first_hb = next(i for i, (_, t) in enumerate(frames) if '"channel":"heartbeats"' in t)
    for recv_ns, text in frames[:first_hb]:
        feed.on_message(text, recv_ns)
    assert feed.books["BTC-USD"].valid
    for recv_ns, text in frames[first_hb + 1 : first_hb + 3]:  # the heartbeat is lost
        feed.on_message(text, recv_ns)
    (gap,) = sink.events("gap")
    assert (gap.expected, gap.got) == (35, 36)
    assert not feed.books["BTC-USD"].valid
    assert not feed.books["ETH-USD"].valid
    assert not feed.books["BTC-USD"].view().valid
    assert feed.reconnect_reason
    assert "gap" in feed.reconnect_reason
    assert sink.counters["coinbase"]["gaps"] == 1
    assert [e.detail[:9] for e in sink.events("resync")] == ["requested"] * 2

    feed.reconnect_reason = None  # what the runner does, then a new connection:
    feed.on_close(10, "resync")
    feed.on_open(2, 11)
    assert len(feed.take_outgoing()) == 4
    snapshot = next(t for _, t in frames if '"snapshot","product_id":"BTC-USD"' in t)
    feed.on_message(snapshot.replace('"sequence_num":13', '"sequence_num":0'), 12)
    assert feed.books["BTC-USD"].valid
    assert not feed.books["ETH-USD"].valid  # its snapshot has not come yet
    assert [e.detail for e in sink.events("resync")][-1] == "snapshot applied"
    assert sink.rows["spot_book"][-1].conn_id == 2
    assert len(sink.events("gap")) == 1  # sequence restarts at 0 on the new connection


def test_a_repeated_sequence_num_is_a_counted_dropped_duplicate_not_a_gap() -> None:
    frames = cryptofeed_frames(*AT)
    sink = MemorySink()
    feed = _feed(sink)
    first_hb = next(i for i, (_, t) in enumerate(frames) if '"channel":"heartbeats"' in t)
    for recv_ns, text in frames[:first_hb]:
        feed.on_message(text, recv_ns)
    assert feed.books["BTC-USD"].valid
    rows = len(sink.rows["spot_book"])
    recv_ns, text = frames[first_hb - 1]
    feed.on_message(text, recv_ns + 1)  # the same frame again (the world's ``dup`` fault)
    assert len(sink.rows["spot_book"]) == rows  # dropped: no row written twice
    (dup,) = sink.events("duplicate")
    assert dup.got == dup.expected - 1
    assert sink.counters["coinbase"]["duplicates"] == 1
    for recv_ns, text in frames[first_hb : first_hb + 3]:
        feed.on_message(text, recv_ns)
    assert not sink.events("gap")
    assert feed.reconnect_reason is None
    assert feed.books["BTC-USD"].valid


def test_crossed_stale_and_malformed() -> None:
    sink = MemorySink()
    frames = cryptofeed_frames(*AT)
    feed = _feed(sink, frames[0][0], stale_after=2.0)
    for recv_ns, text in frames[:40]:
        feed.on_message(text, recv_ns)
    book = feed.books["BTC-USD"]
    t0 = book.updated_ns
    feed.on_timer(t0 + 1_000_000_000)
    assert not book.stale
    feed.on_timer(t0 + 3_000_000_000)
    assert book.stale
    assert [e.subject for e in sink.events("stale")].count("BTC-USD") == 1
    feed.on_timer(t0 + 4_000_000_000)
    assert [e.subject for e in sink.events("stale")].count("BTC-USD") == 1  # flagged once

    cross = (
        '{"channel":"l2_data","timestamp":"2026-08-09T21:05:49Z","sequence_num":40,'
        '"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid",'
        '"event_time":"2026-08-09T21:05:49Z","price_level":"65100","new_quantity":"1"}]}]}'
    )
    feed.on_message(cross, t0 + 5_000_000_000)
    assert not book.stale
    assert book.crossed
    assert not book.view().valid
    (crossed,) = sink.events("crossed")
    assert crossed.subject == "BTC-USD"

    feed.on_message("{not json", t0 + 6)
    assert len(sink.events("malformed")) == 1
    assert not feed.reconnect_reason  # nothing was applied, and the next seq shows any loss
    feed.on_message('{"channel":"l2_data","sequence_num":41,"events":[{}]}', t0 + 7)
    assert len(sink.events("malformed")) == 2
    assert not book.valid
    assert feed.reconnect_reason


def test_rfc3339_ns_keeps_every_digit_across_cached_seconds() -> None:
    """The cached whole second must never leak into another second or another layout."""
    base = 1_786_309_548 * 1_000_000_000  # 2026-08-09T21:05:48Z
    cases = [
        ("2026-08-09T21:05:48.228568804Z", base + 228_568_804),
        ("2026-08-09T21:05:48.5Z", base + 500_000_000),
        ("2026-08-09T21:05:48.000000001Z", base + 1),
        ("2026-08-09T21:05:48Z", base),
        ("2026-08-09T21:05:49.27841Z", base + 1_278_410_000),
        ("2026-08-09T21:05:48.123456789Z", base + 123_456_789),
        ("2026-08-10T21:05:48.123456789Z", base + 86_400_000_000_000 + 123_456_789),
        ("2026-08-09T21:05:48.1Z", base + 100_000_000),
    ]
    for text, want in cases + cases:
        assert rfc3339_ns(text) == want, text


def test_resync_escalates_when_no_snapshot_comes() -> None:
    sink = MemorySink()
    feed = _feed(sink, resync_timeout=5.0)
    feed.on_timer(4_000_000_000)
    assert feed.reconnect_reason is None
    feed.on_timer(6_000_000_000)
    assert feed.reconnect_reason
    assert "no BTC-USD snapshot" in feed.reconnect_reason


def test_legacy_exchange_level2_capture() -> None:
    sink = MemorySink()
    feed = CoinbaseExchangeFeed(ENDPOINT, sink, symbol="SKL-USD")
    feed.on_open(1, 0)
    assert orjson.loads(feed.take_outgoing()[0])["channels"] == ["level2_batch", "heartbeat"]
    agree = total = 0
    with real_fixture("coinbase", "cryptofeed_exchange_level2_sklusd_2021-04-17.txt").open() as f:
        for line in f:
            if line.startswith("wss://"):
                continue  # connect/send lines
            ts, _, text = line.partition(": ")
            feed.on_message(text.rstrip("\n"), int(float(ts) * 1e9))
            msg = orjson.loads(text)
            if msg["type"] == "ticker":
                total += 1
                book = feed.books["SKL-USD"]
                best = (spot(msg["best_bid"]), spot(msg["best_ask"]))
                agree += (book.best_bid, book.best_ask) == best
    assert (agree, total) == (5, 6)
    book = feed.books["SKL-USD"]
    assert book.valid
    assert (len(book.bids), len(book.asks)) == (817, 1336)
    assert (book.best_bid, book.best_ask) == (spot("0.7908"), spot("0.7922"))
    last = sink.rows["spot_book"][-1]
    assert isinstance(last, SpotBookRow)
    assert last.exch_ns is not None
    assert last.seq is None


def test_unknown_venue_and_feed_errors_say_what_to_do() -> None:
    from arbkit.core.errors import ConfigError

    with pytest.raises(ConfigError, match="use one of coinbase"):
        make_feed("binance", ENDPOINT, MemorySink())


def test_rest_product_book_capture() -> None:
    text = real_fixture("coinbase", "nautilus_rest_product_book_btcusd_2026-04-07.json").read_text()
    bids, asks, exch_ns = parse_rest_book(text)
    assert bids[:2] == [(spot("68923.66"), spot("0.17189468")), (spot("68923"), spot("0.05795895"))]
    assert asks[-1] == (spot("68928"), spot("0.058"))
    assert (len(bids), len(asks)) == (5, 5)
    assert exch_ns == 1_775_521_739_662_782_000
