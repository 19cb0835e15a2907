"""Kraken feeds: CRC32 on the real v1 capture and on documented v2 frames, corruption caught."""

from __future__ import annotations

import zlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError, ProtocolError
from arbkit.core.events import EventRow, SpotBookRow
from arbkit.core.sink import MemorySink
from arbkit.venues.kraken import KrakenFeed, KrakenV1Feed, parse_rest_book
from arbkit.venues.spot import make_feed, spot
from tests.fixtures import cryptofeed_frames, real_fixture

V1 = ("kraken", "cryptofeed_v1_book1000_xbtchf_2021-04-17.jsonl")
ENDPOINT = Endpoint("ws://127.0.0.1:1/v2", "http://127.0.0.1:1/0/public")

# The v2 docs' BTC/USD snapshot (docs.kraken.com book-checksum-v2 guide, 2023-10-06).
DOC_BIDS = [
    ("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"), ("45280.3", "1.54592586"), ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"), ("45277.5", "0.30000000"), ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]  # fmt: skip
DOC_ASKS = [
    ("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"), ("45290.2", "0.15890660"), ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"), ("45296.1", "0.35380000"), ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]  # fmt: skip
DOC_CHECKSUM = 3310070434


def _levels(levels: list[tuple[str, str]]) -> str:
    return ",".join(f'{{"price": {p}, "qty": {q}}}' for p, q in levels)


def _frame(kind: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], crc: int) -> str:
    return (
        f'{{"channel": "book", "type": "{kind}", "data": [{{"symbol": "BTC/USD", '
        f'"bids": [{_levels(bids)}], "asks": [{_levels(asks)}], "checksum": {crc}, '
        f'"timestamp": "2023-10-06T17:35:55.440295Z"}}]}}'
    )


def _model_crc(bids: dict[str, str], asks: dict[str, str]) -> int:
    """The docs' algorithm written out plainly, over a text-keyed model book."""

    def part(levels: dict[str, str], reverse: bool) -> str:
        top = sorted(levels, key=float, reverse=reverse)[:10]
        return "".join(
            p.replace(".", "").lstrip("0") + levels[p].replace(".", "").lstrip("0") for p in top
        )

    return zlib.crc32((part(asks, False) + part(bids, True)).encode())


def _model_update(
    bids: dict[str, str],
    asks: dict[str, str],
    b: list[tuple[str, str]],
    a: list[tuple[str, str]],
    depth: int,
) -> None:
    """Apply an update to the text-keyed model book (size 0 deletes), truncated to ``depth``."""
    for side, changes in ((bids, b), (asks, a)):
        for p, q in changes:
            if spot(q):
                side[p] = q
            else:
                side.pop(p, None)
    for side, reverse in ((bids, True), (asks, False)):
        for p in sorted(side, key=float, reverse=reverse)[depth:]:
            del side[p]


def _rows(sink: MemorySink) -> list[SpotBookRow]:
    return [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]


def _v2(sink: MemorySink, depth: int = 10) -> KrakenFeed:
    feed = make_feed("kraken", ENDPOINT, sink, depth=depth)
    assert isinstance(feed, KrakenFeed)
    feed.on_open(1, 0)
    return feed


def test_v2_subscribe_and_urls() -> None:
    feed = _v2(MemorySink(), depth=1000)
    assert orjson.loads(feed.take_outgoing()[0]) == {
        "method": "subscribe",
        "req_id": 1,
        "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 1000, "snapshot": True},
    }
    assert feed.url() == ENDPOINT.ws
    assert feed.urls.rest == ENDPOINT.rest + "/Depth?pair=XBTUSD&count=500"
    feed.on_timer(31_000_000_000)
    assert orjson.loads(feed.take_outgoing()[0]) == {"method": "ping", "req_id": 2}
    with pytest.raises(ConfigError, match="use one of"):
        KrakenFeed(ENDPOINT, MemorySink(), depth=50)


def test_v2_documented_snapshot_checksum() -> None:
    sink = MemorySink()
    feed = _v2(sink)
    feed.on_message(_frame("snapshot", DOC_BIDS, DOC_ASKS, DOC_CHECKSUM), 5)
    book = feed.books["BTC/USD"]
    assert book.valid
    assert (book.best_bid, book.best_ask) == (spot("45283.5"), spot("45285.2"))
    rows = _rows(sink)
    assert len(rows) == 20
    assert all(isinstance(r, SpotBookRow) and r.checksum_ok and r.is_snapshot for r in rows)
    assert rows[0].exch_ns == 1_696_613_755_440_295_000
    assert not sink.events("checksum")


def test_v2_updates_deletes_and_truncation_keep_the_checksum() -> None:
    sink = MemorySink()
    feed = _v2(sink)
    bids, asks = dict(DOC_BIDS), dict(DOC_ASKS)
    feed.on_message(_frame("snapshot", DOC_BIDS, DOC_ASKS, _model_crc(bids, asks)), 1)
    steps: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]] = [
        ([("45284.0", "0.50000000")], []),  # a better bid: the 11th bid falls out silently
        ([], [("45285.2", "0")]),  # delete the best ask (integer zero)
        ([("45283.4", "2.00000000"), ("45200.0", "1.00000000")], [("45284.9", "0.25000000")]),
        ([], [("45299.9", "1.00000000")]),  # beyond depth 10 on the asks: truncated away
    ]
    for i, (b, a) in enumerate(steps):
        _model_update(bids, asks, b, a, 10)
        feed.on_message(_frame("update", b, a, _model_crc(bids, asks)), 10 + i)
    assert not sink.events("checksum")
    book = feed.books["BTC/USD"]
    assert book.valid
    assert book.bids.top() == sorted(((spot(p), spot(q)) for p, q in bids.items()), reverse=True)
    assert book.asks.top() == sorted((spot(p), spot(q)) for p, q in asks.items())
    dropped = [r for r in _rows(sink) if r.recv_ns == 10 and r.size_e8 == 0]
    assert [(r.side, r.price_e8) for r in dropped] == [("bid", spot("45276.6"))]


def test_v2_corrupted_level_is_caught_then_resubscribed() -> None:
    sink = MemorySink()
    feed = _v2(sink)
    feed.take_outgoing()
    feed.on_message(_frame("snapshot", DOC_BIDS, DOC_ASKS, DOC_CHECKSUM), 1)
    bids, asks = dict(DOC_BIDS), dict(DOC_ASKS)
    bids["45283.5"] = "0.20000000"
    good = _model_crc(bids, asks)
    # the level arrives corrupted (one digit off) with the venue's true checksum
    feed.on_message(_frame("update", [("45283.5", "0.20000001")], [], good), 2)
    (ev,) = sink.events("checksum")
    assert ev.expected == good
    assert ev.got != good
    assert _rows(sink)[-1].checksum_ok is False
    book = feed.books["BTC/USD"]
    assert not book.valid
    assert not book.view().valid
    assert [orjson.loads(t)["method"] for t in feed.take_outgoing()] == ["unsubscribe", "subscribe"]
    n = len(_rows(sink))
    feed.on_message(_frame("update", [("45283.5", "0.3")], [], 0), 3)  # ignored until snapshot
    assert len(_rows(sink)) == n
    assert len(sink.events("checksum")) == 1
    feed.on_message(_frame("snapshot", DOC_BIDS, DOC_ASKS, DOC_CHECKSUM), 4)
    assert book.valid
    assert [e.detail for e in sink.events("resync")] == [
        "requested: checksum mismatch",
        "snapshot applied",
    ]
    assert sink.counters["kraken"]["checksum_failures"] == 1


def test_v2_numbers_laid_out_unexpectedly_still_parse_exactly() -> None:
    sink = MemorySink()
    feed = _v2(sink)
    text = _frame("snapshot", DOC_BIDS, DOC_ASKS, DOC_CHECKSUM)
    swapped = text.replace(
        '{"price": 45283.5, "qty": 0.10000000}', '{"qty":0.10000000,"price":45283.5}'
    )
    assert swapped != text
    feed.on_message(swapped, 1)
    assert feed.books["BTC/USD"].valid
    assert not sink.events("checksum")


def test_v2_malformed_book_frames_resubscribe() -> None:
    """A quoted number or a book frame without its data is malformed: recorded, resynced."""
    for bad in (
        _frame("update", [("45283.5", '"0.5"')], [], 0),
        '{"channel":"book","type":"update"}',
    ):
        sink = MemorySink()
        feed = _v2(sink)
        feed.on_message(_frame("snapshot", DOC_BIDS, DOC_ASKS, DOC_CHECKSUM), 1)
        feed.take_outgoing()
        feed.on_message(bad, 2)
        assert len(sink.events("malformed")) == 1
        assert not feed.books["BTC/USD"].valid
        assert [orjson.loads(t)["method"] for t in feed.take_outgoing()] == [
            "unsubscribe",
            "subscribe",
        ]


def test_v2_status_heartbeat_and_errors() -> None:
    sink = MemorySink()
    feed = _v2(sink)
    feed.on_message('{"channel":"heartbeat"}', 1)
    feed.on_message('{"channel":"status","type":"update","data":[{"system":"online"}]}', 2)
    feed.on_message(
        '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,'
        '"symbol":"BTC/USD"},"success":true,"time_in":"x","time_out":"y","req_id":1}',
        3,
    )
    feed.on_message(
        '{"error":"Currency pair not supported","method":"subscribe","success":false}', 4
    )
    assert [(e.kind, e.subject) for e in sink.rows["events"] if isinstance(e, EventRow)] == [
        ("subscribed", "BTC/USD"),
        ("error", ""),
    ]


def test_v1_capture_verifies_every_checksum() -> None:
    sink = MemorySink()
    feed = KrakenV1Feed(ENDPOINT, sink, symbol="XBT/CHF")
    feed.on_open(1, 0)
    frames = cryptofeed_frames(*V1, conn="KRAKEN.ws.50")
    checked = sum('"c":"' in t for _, t in frames)
    assert checked == 289
    for recv_ns, text in frames:
        feed.on_message(text, recv_ns)
    rows = [r for r in _rows(sink) if isinstance(r, SpotBookRow)]
    verified = {r.recv_ns for r in rows if r.checksum_ok}
    assert len(verified) == 289
    assert all(r.checksum_ok is None for r in rows if r.is_snapshot)
    assert not any(r.checksum_ok is False for r in rows)
    assert not sink.events("checksum")
    book = feed.books["XBT/CHF"]
    assert book.valid
    assert (book.best_bid, book.best_ask) == (spot("56060.30000"), spot("56194.20000"))
    assert rows[-1].exch_ns is not None
    assert rows[-1].exch_ns // 1_000_000_000 == rows[-1].recv_ns // 1_000_000_000


def test_v1_corrupted_level_is_caught() -> None:
    sink = MemorySink()
    feed = KrakenV1Feed(ENDPOINT, sink, symbol="XBT/CHF")
    feed.on_open(1, 0)
    frames = cryptofeed_frames(*V1, conn="KRAKEN.ws.50")
    snap = next(i for i, (_, t) in enumerate(frames) if '"as":[' in t)
    recv_ns, text = frames[snap]
    corrupted = text.replace('["56218.30000","0.15000000"', '["56218.30000","0.15000001"', 1)
    assert corrupted != text  # the best ask's size is off by one satoshi
    frames[snap] = (recv_ns, corrupted)
    first = next(i for i, (_, t) in enumerate(frames) if '"c":"' in t)
    for recv_ns, text in frames[: first + 1]:
        feed.on_message(text, recv_ns)
    (ev,) = sink.events("checksum")
    assert ev.expected == 2628179034
    assert not feed.books["XBT/CHF"].valid
    assert feed.reconnect_reason == "resync XBT/CHF: checksum mismatch"


def test_rest_depth_capture() -> None:
    text = real_fixture("kraken", "nautilus_rest_depth_xbtusdt_2025-11-11.json").read_text()
    bids, asks, exch_ns = parse_rest_book(text)
    assert asks[0] == (spot("105944.30000"), spot("0.136"))
    assert bids[0][0] < asks[0][0]
    assert bids == sorted(bids, reverse=True)
    assert exch_ns is not None
    assert exch_ns // 1_000_000_000 >= 1_762_820_248
    with pytest.raises(ProtocolError, match="EQuery:Unknown asset pair"):
        parse_rest_book('{"error":["EQuery:Unknown asset pair"]}')


_level = st.tuples(
    st.integers(min_value=452700, max_value=452900).map(lambda p: f"{p / 10:.1f}"),
    st.sampled_from(
        ["0", "0.00000000", "0.10000000", "1.54582015", "0.00100000", "2", "0.100000000", "3.5"]
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(
        st.tuples(st.lists(_level, max_size=4), st.lists(_level, max_size=4)), max_size=25
    ),
    depth=st.sampled_from([10, 25]),
)
def test_v2_random_updates_never_break_the_checksum(
    frames: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]], depth: int
) -> None:
    """Any sequence of updates (inserts, deletes, deep or at the top, beyond depth) keeps the
    book equal to a plain model and every checksum verified (the top-10 cache included)."""
    sink = MemorySink()
    feed = _v2(sink, depth=depth)
    bids, asks = dict(DOC_BIDS), dict(DOC_ASKS)
    feed.on_message(_frame("snapshot", DOC_BIDS, DOC_ASKS, DOC_CHECKSUM), 1)
    for i, (b, a) in enumerate(frames):
        b = [(p, q) for p, q in b if float(p) < 45284.5]  # keep the book uncrossed
        a = [(p, q) for p, q in a if float(p) > 45284.5]
        _model_update(bids, asks, b, a, depth)
        feed.on_message(_frame("update", b, a, _model_crc(bids, asks)), 10 + i)
    assert not sink.events("checksum")
    book = feed.books["BTC/USD"]
    assert book.bids.top() == sorted(((spot(p), spot(q)) for p, q in bids.items()), reverse=True)
    assert book.asks.top() == sorted((spot(p), spot(q)) for p, q in asks.items())


def test_snapshots_that_keep_failing_escalate_to_a_reconnect() -> None:
    sink = MemorySink()
    feed = _v2(sink)
    feed.take_outgoing()
    bad = DOC_CHECKSUM ^ 1  # the venue's book and ours will never agree
    for t in (1, 2):
        feed.on_message(_frame("snapshot", DOC_BIDS, DOC_ASKS, bad), t)
        assert [orjson.loads(x)["method"] for x in feed.take_outgoing()] == [
            "unsubscribe",
            "subscribe",
        ]
        assert feed.reconnect_reason is None
    feed.on_message(_frame("snapshot", DOC_BIDS, DOC_ASKS, bad), 3)
    assert feed.take_outgoing() == []  # no third resubscribe: a new connection instead
    assert feed.reconnect_reason == "BTC/USD: 3 resyncs within 60 s; reconnecting"
    assert len(sink.events("checksum")) == 3
