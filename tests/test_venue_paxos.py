"""Paxos ``/marketdata/{market}`` (format unverified): URL, split snapshots, updates."""

from __future__ import annotations

import orjson
import pytest

from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError
from arbkit.core.events import EventRow, SpotBookRow
from arbkit.core.sink import MemorySink
from arbkit.venues.paxos import PaxosFeed
from arbkit.venues.spot import make_feed

ENDPOINT = Endpoint("ws://127.0.0.1:1/marketdata", "http://127.0.0.1:1/v2")


def snapshot(bids: list[tuple[str, str]], asks: list[tuple[str, str]], *, final: bool) -> str:
    return orjson.dumps(
        {
            "type": "SNAPSHOT",
            "market": "BTCUSD",
            "bids": [{"price": p, "amount": a} for p, a in bids],
            "asks": [{"price": p, "amount": a} for p, a in asks],
            "final_snapshot": final,
        }
    ).decode()


def update(side: str, price: str, amount: str) -> str:
    return orjson.dumps(
        {"type": "UPDATE", "market": "BTCUSD", "side": side, "price": price, "amount": amount}
    ).decode()


def opened(sink: MemorySink) -> PaxosFeed:
    feed = make_feed("paxos", ENDPOINT, sink)
    assert isinstance(feed, PaxosFeed)
    feed.on_open(1, 0)
    return feed


def test_market_is_chosen_by_the_url() -> None:
    feed = opened(MemorySink())
    assert feed.url() == "ws://127.0.0.1:1/marketdata/BTCUSD"
    assert feed.urls.rest == "http://127.0.0.1:1/v2/markets/BTCUSD/order-book"
    assert feed.take_outgoing() == []
    with pytest.raises(ConfigError, match="one market per connection"):
        make_feed("paxos", ENDPOINT, MemorySink(), symbol=["BTCUSD", "ETHUSD"])


def test_split_snapshot_applies_at_final_then_updates() -> None:
    sink = MemorySink()
    feed = opened(sink)
    book = feed.books["BTCUSD"]
    feed.on_message(snapshot([("19000.25", "0.5")], [], final=False), 1)
    assert not book.valid
    assert book.best_bid is None
    feed.on_message(snapshot([("18999", "1")], [("19001.5", "2")], final=True), 2)
    assert book.valid
    assert book.top(5) == (
        [(1900025000000, 50000000), (1899900000000, 100000000)],
        [(1900150000000, 200000000)],
    )
    feed.on_message(update("BUY", "19000.25", "0"), 3)
    feed.on_message(update("SELL", "19001", "0.75"), 4)
    assert book.top(5) == (
        [(1899900000000, 100000000)],
        [(1900100000000, 75000000), (1900150000000, 200000000)],
    )
    rows = [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]
    assert rows[-1] == SpotBookRow(
        4, None, "paxos", "BTCUSD", "ask", 1900100000000, 75000000, False, None, None, 1
    )


def test_unknown_side_is_malformed() -> None:
    sink = MemorySink()
    feed = opened(sink)
    feed.on_message(snapshot([("19000", "1")], [("19001", "1")], final=True), 1)
    feed.on_message(update("HOLD", "19000", "1"), 2)
    kinds = [e.kind for e in sink.rows["events"] if isinstance(e, EventRow)]
    assert kinds[:2] == ["malformed", "resync"]
    assert not feed.books["BTCUSD"].valid
    assert feed.reconnect_reason  # no way to ask Paxos for a snapshot but to reconnect


def test_unreadable_frame_resyncs_because_nothing_else_would_reveal_a_lost_update() -> None:
    sink = MemorySink()
    feed = opened(sink)
    feed.on_message(snapshot([("19000", "1")], [("19001", "1")], final=True), 1)
    feed.on_message('{"type":"UPDATE","market":"BTC', 2)
    kinds = [e.kind for e in sink.rows["events"] if isinstance(e, EventRow)]
    assert kinds == ["malformed", "resync"]
    assert not feed.books["BTCUSD"].valid
    assert feed.reconnect_reason


SEC = 1_000_000_000


def rest_book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> str:
    return orjson.dumps(
        {
            "bids": [{"price": p, "amount": a} for p, a in bids],
            "asks": [{"price": p, "amount": a} for p, a in asks],
        }
    ).decode()


def test_a_lost_update_is_found_by_the_rest_reconciliation_and_resynced() -> None:
    """Paxos has no sequence numbers: a lost UPDATE used to leave the book silently wrong.
    The periodic REST check finds it (levels an update touched meanwhile are not held
    against the book), records a divergence and resyncs."""
    sink = MemorySink()
    feed = opened(sink)
    feed.on_message(snapshot([("100", "1"), ("99", "2")], [("101", "1")], final=True), 1)
    feed.on_timer(1 * SEC)
    assert feed.take_http() == []  # not due yet
    feed.on_timer(5 * SEC)
    (request,) = feed.take_http()
    assert request.url == feed.urls.rest
    feed.on_message(update("BUY", "100", "3"), 5 * SEC + 1)  # in flight: REST may lag it
    # The world's book: 99 went to 5 (that UPDATE was lost), 100 is at 3 already or not.
    feed.on_http_response(
        request, 200, rest_book([("100", "1"), ("99", "5")], [("101", "1")]), 5 * SEC + 2
    )
    feed.on_timer(5 * SEC + 3)
    assert not sink.events("divergence")  # the reply waits out its grace first
    feed.on_timer(7 * SEC)
    (div,) = sink.events("divergence")
    assert (div.subject, div.expected, div.got) == ("BTCUSD", 5 * 10**8, 2 * 10**8)
    assert "1 levels differ" in div.detail
    assert sink.counters["paxos"]["divergences"] == 1
    assert not feed.books["BTCUSD"].valid
    assert "diverged" in (feed.reconnect_reason or "")


def test_a_matching_rest_book_is_quiet_and_the_next_check_is_scheduled() -> None:
    sink = MemorySink()
    feed = opened(sink)
    feed.on_message(snapshot([("100", "1")], [("101", "1"), ("102", "4")], final=True), 1)
    feed.on_timer(2 * SEC)
    (request,) = feed.take_http()
    # a depth-limited reply (no 102 level) says nothing about deeper levels
    feed.on_http_response(request, 200, rest_book([("100", "1")], [("101", "1")]), 2 * SEC)
    feed.on_timer(4 * SEC)
    assert not sink.events("divergence")
    assert feed.books["BTCUSD"].valid
    feed.on_timer(8 * SEC)
    assert feed.take_http() == []
    feed.on_timer(9 * SEC)
    assert len(feed.take_http()) == 1


def test_a_crossed_book_is_checked_at_once() -> None:
    """A lost delete shows as a crossed book: the REST check does not wait for its slot."""
    sink = MemorySink()
    feed = opened(sink)
    feed.on_message(snapshot([("100", "1")], [("101", "1")], final=True), 1)
    feed.on_message(update("BUY", "102", "1"), 2)  # the ask at 101 was taken; its delete lost
    feed.on_timer(SEC)
    (request,) = feed.take_http()
    feed.on_http_response(request, 200, rest_book([("102", "1"), ("100", "1")], []), SEC)
    feed.on_timer(3 * SEC)
    (div,) = sink.events("divergence")
    assert div.got == 1 * 10**8  # our 101 ask, gone at the venue
