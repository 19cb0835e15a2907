"""Kalshi client against the embedded world under sustained faults, recorded to Parquet.

A minute of connections dropped every few seconds, sequence gaps injected between the drops
and a quarter of the client's subscription commands refused (errors 17, 18, 27): after every
repair the client's books must equal the world's true books, every gap
and every reconnect must be in the recording, and nothing may crash. A stall (no data, no
pings) must be detected and recovered from within 30 s.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from arbkit.core.retry import Backoff
from arbkit.core.storage import SessionWriter, open_session
from arbkit.sim.faults import FaultPlan
from arbkit.sim.kalshi import KalshiSim
from arbkit.sim.path import PricePath
from arbkit.venues.kalshi.auth import Signer
from arbkit.venues.kalshi.vocab import Channel
from arbkit.venues.kalshi.ws import KalshiFeed

pytestmark = pytest.mark.timeout(180)


def _world(tmp_path: Path, faults: str = "") -> tuple[KalshiSim, Signer]:
    sim = KalshiSim(
        index=PricePath(11, time.time_ns()).price_at,
        seed=11,
        tick_s=0.02,
        update_hz=25.0,
        ping_interval=2.0,
        faults=FaultPlan.parse(faults).for_target("kalshi"),
    )
    return sim, Signer.from_credentials(sim.generate_credentials(tmp_path))


async def _until(check: object, timeout: float) -> float:
    """Wait until ``check()`` is true; returns the seconds it took (fails on timeout)."""
    assert callable(check)
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not reached within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def _checkpoint(sim: KalshiSim, feed: KalshiFeed, markets: list[str]) -> None:
    """Freeze the world, let the client catch up, and compare every book with the truth."""
    sim.pause()
    try:
        await sim.drain()
        await _until(lambda: all(feed.books[m].valid for m in markets), timeout=15)
        await asyncio.sleep(0.3)  # frames already on the wire
        for m in markets:
            book = feed.books[m]
            assert (book.yes, book.no) == sim.book(m), f"{m} differs from the world's book"
    finally:
        sim.resume()


async def test_a_minute_of_drops_and_gaps_loses_nothing_recoverable(tmp_path: Path) -> None:
    sim, signer = _world(tmp_path, faults="refuse=0.25")  # and a quarter of commands refused
    await sim.start()
    writer = SessionWriter.create(tmp_path / "rec", "soak")
    try:
        markets = sim.markets("KXBTC15M", "active")[:1] + sim.markets("KXBTCD", "active")[:3]
        feed = KalshiFeed(
            writer, sim.ws_url, signer=signer, markets=markets, channels=[Channel.BOOK]
        )
        stop = asyncio.Event()
        task = asyncio.create_task(
            feed.run(stop=stop, backoff=Backoff(initial=0.1, maximum=1.0), timer_interval=0.2)
        )
        await _checkpoint(sim, feed, markets)
        checkpoints = 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sim.inject("gap")
            await asyncio.sleep(1.0)  # traffic after the gap: the client must see it
            sim.inject("gap")
            await asyncio.sleep(1.0)
            sim.drop_connections()
            await asyncio.sleep(1.5)
            await _checkpoint(sim, feed, markets)
            checkpoints += 1
            assert not task.done(), "the feed stopped"
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        writer.close()
        await sim.stop()

    assert checkpoints >= 10
    s = open_session(tmp_path / "rec" / "soak")
    events = s.frame("events").collect()
    kinds = events["kind"].value_counts().rows()
    counts = dict(kinds)
    # every gap the world injected was detected, and every drop led to a recorded reconnect
    assert counts.get("gap", 0) == sim.counters["gaps"]
    assert counts.get("disconnect", 0) >= sim.counters["drops"]
    assert counts.get("reconnect", 0) >= sim.counters["drops"]
    assert counts.get("connect", 0) == sim.counters["connections"]
    assert counts.get("resync", 0) >= 1
    # refusals were recorded and recovered from (the checkpoints); one answered just before a
    # drop may never reach the client
    assert sim.counters["refused"] >= 3
    refusals = events.filter(
        events["kind"].is_in(["error", "rate_limit"])
        & events["detail"].str.contains(r"^code (17|18|27) ")
    )
    assert 1 <= refusals.height <= sim.counters["refused"]
    counters = s.manifest["counters"]["kalshi_ws"]
    assert counters["gaps"] == sim.counters["gaps"]
    raw = s.raw("kalshi_ws").collect()
    assert raw.filter(raw["kind"] == "connect").height == sim.counters["connections"]
    book_rows = s.frame("kalshi_book").collect()
    assert set(book_rows["market"].unique()) == set(markets)


async def test_a_stall_is_detected_and_recovered_within_30_seconds(tmp_path: Path) -> None:
    sim, signer = _world(tmp_path)
    await sim.start()
    writer = SessionWriter.create(tmp_path / "rec", "stall")
    try:
        markets = sim.markets("KXBTCD", "active")[:2]
        feed = KalshiFeed(
            writer, sim.ws_url, signer=signer, markets=markets, channels=[Channel.BOOK]
        )
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop=stop, backoff=Backoff(initial=0.2)))
        await _until(lambda: all(feed.books[m].valid for m in markets), timeout=10)
        connections = sim.counters["connections"]
        sim.stall(26.0)  # no data and no pings: only the 25 s silence watchdog reconnects
        flagged = await _until(lambda: not feed.valid_books(), timeout=14)
        assert flagged <= 12.5  # pings overdue: stale long before the reconnect
        assert feed.stale
        assert sim.counters["connections"] == connections
        took = await _until(lambda: sim.counters["connections"] > connections, timeout=30)
        assert 24 <= flagged + took <= 30
        recovered = await _until(lambda: all(feed.books[m].valid for m in markets), timeout=10)
        assert flagged + took + recovered <= 30
        await _checkpoint(sim, feed, markets)
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        writer.close()
        await sim.stop()
    events = open_session(tmp_path / "rec" / "stall").frame("events").collect()
    reasons = events.filter(events["kind"] == "disconnect")["detail"].to_list()
    assert "silent for 25 s" in reasons
    kinds = events.filter(events["kind"].is_in(["stale", "recovered"]))["kind"].to_list()
    assert kinds == ["stale", "recovered"]
