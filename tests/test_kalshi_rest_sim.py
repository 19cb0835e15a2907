"""The REST client, poller and discovery against the embedded Kalshi world (every wire era)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from arbkit.core.clock import ClockOffset, now_ns
from arbkit.core.events import EventRow, KalshiRestBookRow
from arbkit.core.sink import MemorySink
from arbkit.sim.kalshi.server import KalshiSim
from arbkit.sim.kalshi.wire import ERAS, Era
from arbkit.sim.path import PricePath
from arbkit.venues.kalshi.auth import Signer
from arbkit.venues.kalshi.discovery import MarketChange, MarketDiscovery
from arbkit.venues.kalshi.limiter import TokenBucket
from arbkit.venues.kalshi.markets import BTC_SERIES, parse_ticker
from arbkit.venues.kalshi.poller import RestBookPoller
from arbkit.venues.kalshi.rest import KalshiAuthError, KalshiNotFoundError, KalshiRest


@pytest.fixture
def era() -> str:
    return "current"


@pytest.fixture
async def world(era: Era) -> AsyncIterator[KalshiSim]:
    sim = KalshiSim(index=PricePath(7, now_ns()).price_at, seed=7, era=era)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
def signer(world: KalshiSim, tmp_path: Path) -> Signer:
    return Signer.from_credentials(world.generate_credentials(tmp_path))


@pytest.mark.parametrize("era", ERAS)
async def test_discovery_poller_and_books_match_the_world(world: KalshiSim, signer: Signer) -> None:
    sink = MemorySink()
    async with KalshiRest(world.rest_url, signer=signer, sink=sink, limiter=TokenBucket(1e5)) as c:
        changes: list[MarketChange] = []
        discovery = MarketDiscovery(c, on_change=changes.append)
        change = await discovery.refresh()
        open_now = {t for s in BTC_SERIES for t in world.markets(s, "active")}
        assert {m.ticker for m in change.added} == open_now
        assert {m.series for m in change.added} == set(BTC_SERIES)
        for m in change.added:
            ticker = parse_ticker(m.ticker)
            assert int(ticker.close_utc.timestamp()) * 10**9 == m.close_ns
            if m.series == "KXBTC15M":
                assert m.close_ns - m.open_ns == 15 * 60 * 10**9

        # Signed REST books are uncached: the world pauses so they equal its true book.
        world.pause()
        poller = RestBookPoller(c)
        poller.apply(change)
        books = await poller.poll_round()
        assert len(books) == len(open_now)
        for book in books:
            yes, no = world.book(book.market)
            assert book.response.status == 200
            assert {p: q for s, p, q in book.levels if s == "yes"} == yes
            assert {p: q for s, p, q in book.levels if s == "no"} == no
            ladder = [p for s, p, _ in book.levels if s == "yes"]
            assert ladder == sorted(ladder)  # ascending, best bid last
        rows = [r for r in sink.rows["kalshi_rest_book"] if isinstance(r, KalshiRestBookRow)]
        assert {r.market for r in rows} == open_now

        series = await c.series("KXBTC15M")
        assert (series.fee_type, series.fee_multiplier) == ("quadratic", Decimal(1))
        with pytest.raises(KalshiNotFoundError):
            await c.market("KXBTC15M-20JAN010000-00")


async def test_unsigned_reads_are_cached_like_the_cdn(world: KalshiSim) -> None:
    async with KalshiRest(world.rest_url, limiter=TokenBucket(1e5)) as client:
        (ticker, *_) = world.markets("KXBTCD", "active")
        first = await client.orderbook(ticker)
        second = await client.orderbook(ticker)
    assert first.response.age_s is None
    assert second.response.age_s is not None
    assert 0 <= second.response.age_s <= 15


async def test_rate_limit_backoff_clock_and_bad_key(world: KalshiSim, tmp_path: Path) -> None:
    sink = MemorySink()
    async with KalshiRest(world.rest_url, sink=sink, backoff_initial=0.05) as client:
        world.fail_rest(429, 2)
        started = time.monotonic()
        markets = await client.markets(series_ticker="KXBTC15M", status="open")
        assert time.monotonic() - started >= 0.12
        assert len(markets) >= 1
        kinds = [e.kind for e in sink.rows["events"] if isinstance(e, EventRow)]
        assert kinds == ["rate_limit", "rate_limit"]

        clock = ClockOffset()
        status = await client.exchange_status(clock)
        assert status.exchange_active
        assert clock.offset_ns is not None
        assert abs(clock.offset_ns) < 50_000_000  # same machine, ns server clock header

    # A key the world does not know: 401 with the settings to check.
    stranger = KalshiSim(index=lambda _t: 1.0)
    creds = stranger.generate_credentials(tmp_path)
    async with KalshiRest(world.rest_url, signer=Signer.from_credentials(creds)) as client:
        with pytest.raises(KalshiAuthError, match="KALSHI_API_KEY_ID"):
            await client.exchange_status()


async def test_rollover_follows_the_next_15_minute_market(tmp_path: Path) -> None:
    # The world's clock sits 1 s before a quarter-hour close; discovery uses the same clock.
    quarter = 15 * 60 * 10**9
    real = now_ns()
    offset = (real // quarter + 1) * quarter - 10**9 - real

    def clock() -> int:
        return now_ns() + offset

    sim = KalshiSim(index=PricePath(3, clock()).price_at, seed=3, now_ns=clock)
    await sim.start()
    changes: list[MarketChange] = []
    try:
        async with KalshiRest(sim.rest_url, limiter=TokenBucket(1e5)) as client:
            discovery = MarketDiscovery(
                client, ["KXBTC15M"], on_change=changes.append, clock=clock, close_grace=0.3
            )
            await discovery.refresh()
            (first,) = discovery.markets.values()
            assert 0 < discovery.next_delay() < 1.5
            task = asyncio.create_task(discovery.run())
            deadline = time.monotonic() + 5
            while len(changes) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await sim.stop()
    (second,) = discovery.markets.values()
    assert changes[1].removed == (first.ticker,)
    assert changes[1].added == (second,)
    assert second.open_ns == first.close_ns
    assert parse_ticker(second.ticker).open_utc == parse_ticker(first.ticker).close_utc
