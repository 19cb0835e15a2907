"""Gemini, Crypto.com, Bullish, LMAX and Paxos feeds end to end against the embedded world.

The real runner drives each venue's protocol over loopback sockets to the world's servers
(written independently from the references); the client's book must equal the world's true
book, and an injected sequence gap must be caught and resynced back to the truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import orjson
import pytest

from arbkit.core.book import L2Book
from arbkit.core.events import EventRow
from arbkit.core.retry import Backoff
from arbkit.core.sink import MemorySink
from arbkit.venues.gemini import GeminiV2Feed
from arbkit.venues.runner import run_feed
from arbkit.venues.spot import SpotFeed, make_feed
from tests.sim_spot_support import World, true_top

DEPTH = {"cryptocom": 50, "lmax": 50}
"""Venues whose feed carries only the top N levels."""


async def until(condition: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def running(feed: SpotFeed, sink: MemorySink) -> AsyncIterator[None]:
    stop = asyncio.Event()
    backoff = Backoff(initial=0.05, maximum=0.2)
    task = asyncio.create_task(
        run_feed(feed, sink, stop=stop, backoff=backoff, timer_interval=0.05)
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def matches(world: World, venue: str, book: L2Book) -> bool:
    n = DEPTH.get(venue)
    return book.valid and book.top(n or 1_000_000) == true_top(world, venue, n)


async def converge(world: World, venue: str, book: L2Book, what: str) -> None:
    """Step the world one tick at a time until, after a tick's frames arrive, the client's
    book equals the true book (LMAX publishes only about once a second of world time)."""
    await until(lambda: book.valid, f"{what}: a valid {venue} book")
    loop = asyncio.get_running_loop()
    for _ in range(100):
        world.advance()
        deadline = loop.time() + 0.1
        while loop.time() < deadline:
            await asyncio.sleep(0.005)
            if matches(world, venue, book):
                return
    pytest.fail(f"{what}: the {venue} book never equalled the world's")


@pytest.mark.parametrize("venue", ["gemini", "cryptocom", "bullish", "lmax", "paxos"])
async def test_feed_tracks_the_world_book(venue: str) -> None:
    async with World((venue,)) as w:
        sink = MemorySink()
        feed = make_feed(venue, w.eps[venue], sink)
        async with running(feed, sink):
            book = next(iter(feed.books.values()))
            await converge(w, venue, book, "first snapshot")
        assert "malformed" not in sink.event_kinds()
        assert "gap" not in sink.event_kinds()


async def inject_until_seen(
    world: World, venue: str, sink: MemorySink, fault: str, kind: str
) -> None:
    """Inject ``fault`` into the venue's stream and step the world until the feed records an
    event of ``kind`` (a slow venue may take many steps to send the frame it breaks)."""
    world.sim.inject(venue, fault)
    for _ in range(100):
        world.advance()
        await asyncio.sleep(0.01)
        if kind in sink.event_kinds():
            return
    await until(lambda: kind in sink.event_kinds(), f"{venue} {kind} event")


@pytest.mark.parametrize("venue", ["gemini", "cryptocom", "bullish"])
async def test_injected_gap_is_caught_and_resynced(venue: str) -> None:
    async with World((venue,)) as w:
        sink = MemorySink()
        feed = make_feed(venue, w.eps[venue], sink)
        async with running(feed, sink):
            book = next(iter(feed.books.values()))
            await converge(w, venue, book, "first snapshot")
            await inject_until_seen(w, venue, sink, "gap", "gap")
            await converge(w, venue, book, "resync")
        resyncs = [e.detail for e in sink.rows["events"] if isinstance(e, EventRow)]
        assert "snapshot applied" in resyncs
        # Crypto.com resyncs by subscribing again on the same socket; the others reconnect.
        assert sink.event_kinds().count("connect") == (1 if venue == "cryptocom" else 2)


@pytest.mark.parametrize("venue", ["gemini", "cryptocom", "bullish"])
async def test_repeated_frame_is_skipped_without_resync(venue: str) -> None:
    async with World((venue,)) as w:
        sink = MemorySink()
        feed = make_feed(venue, w.eps[venue], sink)
        async with running(feed, sink):
            book = next(iter(feed.books.values()))
            await converge(w, venue, book, "first snapshot")
            await inject_until_seen(w, venue, sink, "dup", "duplicate")
            await converge(w, venue, book, "after the repeat")
        assert "gap" not in sink.event_kinds()
        assert "resync" not in sink.event_kinds()
        assert sink.event_kinds().count("connect") == 1


@pytest.mark.parametrize("venue", ["gemini", "cryptocom", "bullish", "lmax", "paxos"])
async def test_malformed_frame_is_recorded_and_the_book_recovers(venue: str) -> None:
    async with World((venue,)) as w:
        sink = MemorySink()
        feed = make_feed(venue, w.eps[venue], sink)
        async with running(feed, sink):
            book = next(iter(feed.books.values()))
            await converge(w, venue, book, "first snapshot")
            await inject_until_seen(w, venue, sink, "malformed", "malformed")
            await converge(w, venue, book, "after the malformed frame")


async def test_cryptocom_heartbeats_are_answered_so_the_socket_survives() -> None:
    async with World(("cryptocom",)) as w:
        sink = MemorySink()
        feed = make_feed("cryptocom", w.eps["cryptocom"], sink)
        async with running(feed, sink):
            book = feed.books["BTC_USD"]
            await converge(w, "cryptocom", book, "first snapshot")

            def raw(marker: str) -> bool:
                return any(marker in f.payload for f in sink.raw["cryptocom"])

            for _ in range(2000):  # due 30 s of world time after connecting
                if raw('"public/heartbeat"'):
                    break
                w.advance(10)
                await asyncio.sleep(0.005)
            await until(lambda: raw('"public/respond-heartbeat"'), "the heartbeat reply")
            w.advance(120)  # past the 5 s deadline
            await converge(w, "cryptocom", book, "after the heartbeat")
        [hb] = [f for f in sink.raw["cryptocom"] if '"public/heartbeat"' in f.payload]
        [reply] = [f for f in sink.raw["cryptocom"] if f.kind == "send" and "respond" in f.payload]
        hb_id = orjson.loads(hb.payload)["id"]
        assert reply.payload == f'{{"id":{hb_id},"method":"public/respond-heartbeat"}}'
        assert sink.event_kinds().count("connect") == 1


async def test_gemini_v2_feed_tracks_the_world_book() -> None:
    async with World(("gemini",)) as w:
        sink = MemorySink()
        endpoint = w.eps["gemini"]
        v2 = type(endpoint)(endpoint.ws.replace("/v1/", "/v2/"), endpoint.rest)
        feed = GeminiV2Feed(v2, sink)
        async with running(feed, sink):
            await converge(w, "gemini", feed.books["BTCUSD"], "v2 snapshot")
        assert "malformed" not in sink.event_kinds()
