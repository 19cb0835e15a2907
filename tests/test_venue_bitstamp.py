"""Bitstamp: the 2022 diff capture aligned to its REST snapshot, full frames, keepalive."""

from __future__ import annotations

import orjson
import pytest

from arbkit.core.config import Endpoint
from arbkit.core.events import EventRow, SpotBookRow
from arbkit.core.sink import MemorySink
from arbkit.venues.bitstamp import BitstampFeed
from arbkit.venues.spot import HttpRequest, make_feed, spot
from tests.fixtures import cryptofeed_frames, cryptofeed_records

DIFFS = ("bitstamp", "cryptofeed_diff_order_book_ethusd_2022-01-05.jsonl")
ENDPOINT = Endpoint("ws://127.0.0.1:1", "http://127.0.0.1:1/api/v2")


def _feed(sink: MemorySink, mode: str = "full", symbol: str = "btcusd") -> BitstampFeed:
    feed = make_feed("bitstamp", ENDPOINT, sink, symbol=symbol, mode=mode)
    assert isinstance(feed, BitstampFeed)
    feed.on_open(1, 0)
    return feed


def _rows(sink: MemorySink) -> list[SpotBookRow]:
    return [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]


def _model() -> tuple[dict[int, int], dict[int, int]]:
    """The capture's book built plainly: REST snapshot, then diffs newer than it."""
    (rest,) = cryptofeed_records(*DIFFS, kind="http")
    snap = orjson.loads(rest["data"])
    snap_mt = int(snap["microtimestamp"])
    bids = {spot(p): spot(a) for p, a in snap["bids"]}
    asks = {spot(p): spot(a) for p, a in snap["asks"]}
    for _, text in cryptofeed_frames(*DIFFS):
        msg = orjson.loads(text)
        if msg["event"] != "data" or not msg["channel"].startswith("diff_"):
            continue
        if int(msg["data"]["microtimestamp"]) <= snap_mt:
            continue
        for side, key in ((bids, "bids"), (asks, "asks")):
            for p, a in msg["data"][key]:
                side[spot(p)] = spot(a)
    return {p: s for p, s in bids.items() if s}, {p: s for p, s in asks.items() if s}


@pytest.mark.parametrize("answer_late", [False, True])
def test_diff_capture_aligned_to_the_rest_snapshot(answer_late: bool) -> None:
    sink = MemorySink()
    feed = _feed(sink, mode="diff", symbol="ethusd")
    assert orjson.loads(feed.take_outgoing()[0]) == {
        "event": "bts:subscribe",
        "data": {"channel": "diff_order_book_ethusd"},
    }
    (rest,) = cryptofeed_records(*DIFFS, kind="http")
    pending: list[HttpRequest] = []
    for recv_ns, text in cryptofeed_frames(*DIFFS):
        feed.on_message(text, recv_ns)
        pending += feed.take_http()
        if pending and not answer_late:
            feed.on_http_response(pending.pop(), 200, rest["data"], recv_ns)
    if answer_late:  # every diff buffered before the snapshot lands
        (request,) = pending
        assert request.url == "http://127.0.0.1:1/api/v2/order_book/ethusd/"
        assert not feed.books["ethusd"].valid
        feed.on_http_response(request, 200, rest["data"], 1)
    book = feed.books["ethusd"]
    bids, asks = _model()
    assert book.bids.top() == sorted(bids.items(), reverse=True)
    assert book.asks.top() == sorted(asks.items())
    assert (len(book.bids), len(book.asks)) == (2013, 1977)
    assert (book.best_bid, book.best_ask) == (spot("3800.78"), spot("3803.58"))
    assert book.valid
    assert not book.crossed  # diffs misaligned to the snapshot would leave it crossed
    dropped = sink.events("duplicate")
    assert (len(dropped), dropped[0].detail) == (
        (1, "12 diffs older than the snapshot")
        if answer_late
        else (12, "microtimestamp not newer than the book")
    )
    snapshot_rows = [r for r in _rows(sink) if r.is_snapshot]
    assert len(snapshot_rows) == 2023 + 1971
    assert snapshot_rows[0].exch_ns == 1_641_343_695_681_418_000


def _data(mt: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    return orjson.dumps(
        {
            "data": {
                "timestamp": str(mt // 1_000_000),
                "microtimestamp": str(mt),
                "bids": bids,
                "asks": asks,
            },
            "channel": "order_book_btcusd",
            "event": "data",
        }
    ).decode()


def test_full_frames_replace_the_book_and_record_only_changes() -> None:
    sink = MemorySink()
    feed = _feed(sink)
    assert orjson.loads(feed.take_outgoing()[0])["data"] == {"channel": "order_book_btcusd"}
    feed.on_message(
        '{"event":"bts:subscription_succeeded","channel":"order_book_btcusd","data":{}}', 1
    )
    mt = 1_641_343_695_572_693
    feed.on_message(_data(mt, [["100.00", "1.0"], ["99.00", "2.0"]], [["101.00", "3.0"]]), 2)
    book = feed.books["btcusd"]
    assert book.valid
    assert [r.is_snapshot for r in _rows(sink)] == [True] * 3
    feed.on_message(_data(mt + 1, [["100.00", "1.5"]], [["101.00", "3.0"], ["102", "4"]]), 3)
    changes = [(r.side, r.price_e8, r.size_e8) for r in _rows(sink)[3:]]
    assert sorted(changes) == [("ask", 102 * 10**8, 4 * 10**8), ("bid", 99 * 10**8, 0),
                               ("bid", 100 * 10**8, 150_000_000)]  # fmt: skip
    assert book.bids.top() == [(100 * 10**8, 150_000_000)]
    assert book.asks.top() == [(101 * 10**8, 3 * 10**8), (102 * 10**8, 4 * 10**8)]
    assert _rows(sink)[-1].exch_ns == (mt + 1) * 1000
    feed.on_message(_data(mt + 1, [], []), 4)  # not newer: dropped
    (dup,) = sink.events("duplicate")
    assert (dup.expected, dup.got) == (mt + 1, mt + 1)
    assert len(book.bids) == 1


def test_keepalive_reconnect_request_and_errors() -> None:
    sink = MemorySink()
    feed = _feed(sink)
    feed.take_outgoing()
    feed.on_timer(19_000_000_000)
    assert feed.take_outgoing() == []
    feed.on_timer(20_000_000_000)
    assert feed.take_outgoing() == ['{"event":"bts:heartbeat"}']
    feed.on_message('{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}', 1)
    feed.on_message('{"event":"bts:error","channel":"","data":{"code":null,"message":"x"}}', 2)
    assert [e.kind for e in sink.rows["events"] if isinstance(e, EventRow)] == ["error"]
    feed.on_message('{"event":"bts:request_reconnect","channel":"","data":""}', 3)
    assert feed.reconnect_reason == "bts:request_reconnect from the server"


def test_diff_mode_retries_a_failed_snapshot_and_ignores_old_answers() -> None:
    sink = MemorySink()
    feed = _feed(sink, mode="diff")
    feed.on_message(
        '{"event":"bts:subscription_succeeded","channel":"diff_order_book_btcusd","data":{}}', 1
    )
    (request,) = feed.take_http()
    feed.on_http_response(request, 503, "busy", 2)
    assert feed.take_http() == []  # no retry storm: it waits about a second (1 s +-20 %)
    feed.on_timer(2 + 700_000_000)
    assert feed.take_http() == []
    feed.on_timer(2 + 1_300_000_000)
    (retry,) = feed.take_http()
    assert sink.events("error")[0].detail.startswith("REST snapshot: HTTP 503; again in ")
    feed.on_close(3, "dropped")
    feed.on_open(2, 4)
    snap = '{"timestamp":"1","microtimestamp":"1000000","bids":[["1","1"]],"asks":[["2","1"]]}'
    feed.on_http_response(retry, 200, snap, 5)  # answer to connection 1: ignored
    assert not feed.books["btcusd"].valid
    assert not [r for r in _rows(sink) if isinstance(r, SpotBookRow)]
