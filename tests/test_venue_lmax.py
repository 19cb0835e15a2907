"""LMAX public ``ORDER_BOOK`` (payload unverified): subscribe, full-book frames, errors."""

from __future__ import annotations

import orjson

from arbkit.core.config import Endpoint
from arbkit.core.events import EventRow, SpotBookRow
from arbkit.core.sink import MemorySink
from arbkit.venues.lmax import LmaxFeed
from arbkit.venues.spot import make_feed

ENDPOINT = Endpoint("ws://127.0.0.1:1/v1/web-socket", "http://127.0.0.1:1/v1")


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]], ts: str) -> str:
    return orjson.dumps(
        {
            "type": "ORDER_BOOK",
            "instrument_id": "btc-usd",
            "timestamp": ts,
            "status": "OPEN",
            "bids": [{"price": p, "quantity": q} for p, q in bids],
            "asks": [{"price": p, "quantity": q} for p, q in asks],
        }
    ).decode()


def test_subscribe_and_urls() -> None:
    feed = make_feed("lmax", ENDPOINT, MemorySink())
    assert isinstance(feed, LmaxFeed)
    assert feed.url() == ENDPOINT.ws
    assert feed.urls.rest == "http://127.0.0.1:1/v1/orderbook/btc-usd"
    feed.on_open(1, 0)
    assert feed.take_outgoing() == [
        '{"type":"SUBSCRIBE","channels":[{"name":"ORDER_BOOK","instruments":["btc-usd"]}]}'
    ]


def test_every_order_book_frame_replaces_the_book() -> None:
    sink = MemorySink()
    feed = make_feed("lmax", ENDPOINT, sink)
    feed.on_open(1, 0)
    feed.on_message('{"type":"SUBSCRIPTIONS","channels":[{"name":"ORDER_BOOK"}]}', 1)
    feed.on_message(
        book([("65000.5", "1.2"), ("64999", "3")], [("65001", "0.5")], "2026-04-24T13:04:19.490Z"),
        2,
    )
    b = feed.books["btc-usd"]
    assert b.valid
    assert b.top(5) == (
        [(6500050000000, 120000000), (6499900000000, 300000000)],
        [(6500100000000, 50000000)],
    )
    feed.on_message(book([("64998", "1")], [("65002", "2")], "2026-04-24T13:04:20.5Z"), 3)
    assert b.top(5) == ([(6499800000000, 100000000)], [(6500200000000, 200000000)])
    rows = [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]
    assert all(r.is_snapshot for r in rows)
    assert rows[-1].exch_ns == 1777035860_500_000_000
    assert sink.event_kinds() == ["subscribed"]


def test_error_frame_recorded() -> None:
    sink = MemorySink()
    feed = make_feed("lmax", ENDPOINT, sink)
    feed.on_open(1, 0)
    feed.on_message(
        '{"type":"ERROR","error_code":"INVALID_REQUEST","error_message":"unknown instrument"}', 1
    )
    [err] = [e for e in sink.rows["events"] if isinstance(e, EventRow)]
    assert (err.kind, err.detail) == ("error", "INVALID_REQUEST: unknown instrument")


def test_crossed_frame_flagged() -> None:
    sink = MemorySink()
    feed = make_feed("lmax", ENDPOINT, sink)
    feed.on_open(1, 0)
    feed.on_message(book([("65010", "1")], [("65000", "1")], "2026-04-24T13:04:19Z"), 1)
    assert sink.event_kinds() == ["crossed"]
    assert not feed.books["btc-usd"].view().valid
