"""Coinbase, Kraken and Bitstamp feeds end to end: the real runner against the embedded world.

Each feed connects over loopback to the world's server for its venue, builds its book from the
wire, and must end up with exactly the world's true book; injected faults (a Coinbase
``sequence_num`` gap, a corrupted Kraken level) must be caught, recorded and resynced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from arbkit.core.events import EventRow, SpotBookRow
from arbkit.core.retry import Backoff
from arbkit.core.sink import MemorySink
from arbkit.venues.runner import run_feed
from arbkit.venues.spot import SpotFeed, make_feed
from tests.sim_spot_support import World, true_top


def _rows(sink: MemorySink) -> list[SpotBookRow]:
    return [r for r in sink.rows["spot_book"] if isinstance(r, SpotBookRow)]


async def _until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _quiet(sink: MemorySink, stream: str, idle: float = 0.25) -> None:
    """Wait until no frame has arrived for ``idle`` seconds."""
    seen = -1
    while sink.counters[stream]["frames"] != seen:
        seen = sink.counters[stream]["frames"]
        await asyncio.sleep(idle)


async def _serve_http(feed: SpotFeed, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    """The driver side of `SpotFeed.take_http`: perform each GET, hand back the reply."""
    while not stop.is_set():
        for request in feed.take_http():
            async with http.get(request.url) as resp:
                text = await resp.text()
            feed.on_http_response(request, resp.status, text, 0)
        await asyncio.sleep(0.01)


async def _session(
    w: World,
    feed: SpotFeed,
    sink: MemorySink,
    *,
    steps: int,
    fault: str | None = None,
    http: bool = False,
) -> None:
    """Run ``feed`` against the world: subscribe, ``steps`` world steps (``fault`` injected half
    way), then until the book is valid again and the socket is quiet."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_feed(feed, sink, stop=stop, backoff=Backoff(0.05, 0.2))),
    ]
    if http:
        tasks.append(asyncio.create_task(_serve_http(feed, w.http, stop)))
    try:
        await _until(lambda: "subscribed" in sink.event_kinds())
        for i in range(steps):
            if fault and i == steps // 2:
                w.sim.inject(feed.venue, fault)
            w.advance(1)
            await asyncio.sleep(0.005)
        await _until(lambda: all(b.valid for b in feed.books.values()))
        await _quiet(sink, feed.stream)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_coinbase_tracks_the_true_book_and_resyncs_after_a_gap() -> None:
    async with World(("coinbase",)) as w:
        sink = MemorySink()
        feed = make_feed("coinbase", w.eps["coinbase"], sink)
        await _session(w, feed, sink, steps=40, fault="gap")
        book = feed.books["BTC-USD"]
        assert book.top() == true_top(w, "coinbase")
    kinds = sink.event_kinds()
    assert kinds.count("gap") == 1
    assert kinds.count("connect") == 2  # resynced by reconnecting
    assert "checksum" not in kinds
    assert "malformed" not in kinds


async def test_kraken_checksums_hold_and_a_corrupted_level_is_resynced() -> None:
    async with World(("kraken",)) as w:
        sink = MemorySink()
        feed = make_feed("kraken", w.eps["kraken"], sink, depth=100)
        await _session(w, feed, sink, steps=40, fault="corrupt")
        book = feed.books["BTC/USD"]
        assert book.top(100) == true_top(w, "kraken", 100)
    kinds = sink.event_kinds()
    assert kinds.count("checksum") == 1
    assert kinds.count("connect") == 1  # resynced by resubscribing
    resyncs = [e.detail for e in sink.rows["events"] if isinstance(e, EventRow)]
    assert "snapshot applied" in resyncs
    rows = _rows(sink)
    assert sum(r.checksum_ok is False for r in rows) >= 1
    assert sum(bool(r.checksum_ok) for r in rows) > 40


async def test_bitstamp_full_frames_track_the_true_top_100() -> None:
    async with World(("bitstamp",)) as w:
        sink = MemorySink()
        feed = make_feed("bitstamp", w.eps["bitstamp"], sink)
        await _session(w, feed, sink, steps=30)
        assert feed.books["btcusd"].top(100) == true_top(w, "bitstamp", 100)
    assert "duplicate" not in sink.event_kinds()


async def test_bitstamp_diffs_aligned_to_the_rest_snapshot() -> None:
    async with World(("bitstamp",)) as w:
        sink = MemorySink()
        feed = make_feed("bitstamp", w.eps["bitstamp"], sink, mode="diff")
        await _session(w, feed, sink, steps=30, http=True)
        assert feed.books["btcusd"].top() == true_top(w, "bitstamp")


async def test_crossed_and_stale_books_are_flagged() -> None:
    async with World(("coinbase",)) as w:
        sink = MemorySink()
        feed = make_feed("coinbase", w.eps["coinbase"], sink, stale_after=0.3)
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed(feed, sink, stop=stop, timer_interval=0.05))
        try:
            book = feed.books["BTC-USD"]
            await _until(lambda: book.valid)
            await _until(lambda: book.stale)  # the manual-clock world sends nothing
            assert "stale" in sink.event_kinds()
            w.advance(1)
            await _until(lambda: not book.stale)
            w.sim.inject("coinbase", "crossed", seconds=0.5)
            w.advance(2)
            await _until(lambda: "crossed" in sink.event_kinds())
            assert book.crossed
            assert not feed.view().valid
            w.advance(20)
            await _until(lambda: not book.crossed)
            assert feed.view().valid
        finally:
            stop.set()
            await task
