"""The spot world as a whole: true books, the reference BRTI, REST snapshots, faults, mounting."""

from __future__ import annotations

import json
import time
import zlib
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

from arbkit.core.config import VENUES
from arbkit.core.errors import ConfigError
from arbkit.index.rti import RtiCalculator
from arbkit.sim.path import PricePath
from arbkit.sim.spot import SpotSim, TopView, VenueBook, VenueParams
from arbkit.sim.spot.kraken import checksum
from arbkit.sim.spot.wire import fixed, rfc3339, trim, trim1
from tests.fixtures import real_fixture
from tests.sim_spot_support import T0, Book, World, drain, e8, send, true_top

S = 1_000_000_000


# -- the book model ---------------------------------------------------------------------------
def test_venue_book_stays_sorted_uncrossed_deep_and_near_the_path() -> None:
    path = PricePath(11, T0)
    book = VenueBook("coinbase", VenueParams(rate=40), path, seed=11)
    replay = Book()
    for i in range(400):
        t = T0 + i * 50_000_000
        for side, price, size, old in book.step(t, 0.05):
            assert replay.side(side).get(price, 0) == old  # changes chain exactly
            replay.set(side, price, size)
        view = book.view()
        assert not view.crossed
    assert replay.top() == (list(view.bids), list(view.asks))
    assert 400 <= len(view.bids) <= 420
    assert 400 <= len(view.asks) <= 420
    mid = (view.bids[0][0] + view.asks[0][0]) / 2e8
    assert abs(mid / path.price_at(t) - 1) < 5e-4
    near = sum(s for p, s in view.bids if p >= view.bids[0][0] * 0.995) / 1e8
    assert 2 < near < 30  # BTC within 0.5 % of the top: realistic, BRTI depth of tens


def test_top_view_reports_levels_entering_and_leaving_the_top() -> None:
    book = VenueBook(
        "kraken", VenueParams(tick_e8=10_000_000, mean_gap_ticks=10), PricePath(2, T0), 2
    )
    book.step(T0, 0.0)
    view = TopView(book, 10)
    client = Book()
    for side, levels in (("bid", book.levels("bid", 10)), ("ask", book.levels("ask", 10))):
        for p, s in levels:
            client.set(side, p, s)
    fell_out = 0
    for i in range(1, 200):
        book.step(T0 + i * 50_000_000, 0.05)
        inside, left = view.advance()
        fell_out += len(left)
        for side, p, s, _ in inside:
            client.set(side, p, s)
        client.truncate(10)
        assert client.top() == (book.levels("bid", 10), book.levels("ask", 10))
    assert fell_out > 0


def test_wire_formats_are_exact() -> None:
    assert fixed(6_892_366_000_000, 2) == "68923.66"
    assert fixed(10_000_000, 8) == "0.10000000"
    assert fixed(4_528_520_000_000, 1) == "45285.2"
    assert trim(6_892_300_000_000) == "68923"
    assert trim(1600) == "0.000016"
    assert trim(0) == "0"
    assert trim1(6_520_600_000_000) == "65206.0"
    assert trim1(5_292_903) == "0.05292903"
    assert trim1(0) == "0.0"
    assert rfc3339(1_786_309_548_483_587_501) == "2026-08-09T21:05:48.483587501Z"
    assert rfc3339(1_786_309_542_504_360_000, 6, strip=True) == "2026-08-09T21:05:42.50436Z"
    assert rfc3339(1_786_309_542_000_000_000, 6, strip=True) == "2026-08-09T21:05:42Z"


def test_kraken_checksum_matches_the_guide_rule() -> None:
    asks = [(4_528_520_000_000, 100_000)]  # "45285.2" / "0.00100000" -> "452852" + "100000"
    bids = [(4_528_510_000_000, 2_500_000_000)]  # "45285.1" / "25.00000000"
    assert checksum(asks, bids) == zlib.crc32(b"452852100000" + b"4528512500000000")


def test_unknown_venue_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown spot venue"):
        SpotSim(path=PricePath(1, T0), seed=1, venues=("coinbase", "binance"), now_ns=lambda: T0)


# -- the reference BRTI -----------------------------------------------------------------------
def test_the_reference_sees_each_venue_as_its_public_feed_shows_it() -> None:
    clock = [T0]
    sim = SpotSim(path=PricePath(5, T0), seed=5, now_ns=lambda: clock[0], autostep=False)
    lmax, bitstamp = sim.server("lmax"), sim.server("bitstamp")
    published = []
    for _ in range(40):  # 2 s in 50 ms steps: LMAX publishes at most once a second
        clock[0] += 50_000_000
        sim.step()
        top = bitstamp.published_view()  # its feed shows only its top levels
        assert top.bids == bitstamp.book.view().bids[: bitstamp.published_depth]
        assert len(top.bids) < len(bitstamp.book.view().bids)
        published.append(lmax.published_view())
    assert lmax.published_view() != lmax.book.view()  # the live book moved on since
    distinct = [v for i, v in enumerate(published) if i == 0 or v != published[i - 1]]
    assert len(distinct) == 2  # at 50 ms and at 1050 ms
    assert all(len(v.bids) <= lmax.published_depth for v in distinct)  # type: ignore[operator]
    # the reference is computed from what the feeds show, not from the live books
    servers = [sim.server(v) for v in VENUES]
    shown = RtiCalculator().calculate([s.published_view() for s in servers], clock[0])
    live = RtiCalculator().calculate([s.book.view(s.published_depth) for s in servers], clock[0])
    assert sim.compute_index(clock[0]).value_e8 == shown.value_e8 != live.value_e8


async def test_reference_brti_tracks_the_path_and_drops_bad_venues() -> None:
    clock = [T0]
    seen: list[int] = []
    sim = SpotSim(
        path=PricePath(5, T0),
        seed=5,
        now_ns=lambda: clock[0],
        autostep=False,
        on_index=lambda t, r: seen.append(t),
    )

    def run(seconds: float) -> None:
        for _ in range(int(seconds * 20)):
            clock[0] += 50_000_000
            sim.step()

    run(3)
    result = sim.last_result
    assert result is not None
    assert result.value is not None
    assert set(result.venues_used) == set(VENUES)
    assert result.excluded == {}
    path_price = Decimal(repr(sim.path.price_at(clock[0])))
    assert abs(result.value / path_price - 1) < Decimal("0.001")
    assert 3 <= result.utilized_depth <= 200  # type: ignore[operator]
    assert len(seen) == 16
    assert seen[1] - seen[0] == 200_000_000
    # reference_index: the latest value at or before t; one-second prints for settlement.
    assert sim.reference_index(T0 - 1) is None
    assert sim.reference_index(seen[5] + 1) == sim.reference_index(seen[5])
    seconds = sim.one_second_values(T0, T0 + 3 * S)
    assert [s for s, _ in seconds] == [T0 // S, T0 // S + 1, T0 // S + 2]
    assert all(v is not None for _, v in seconds)

    sim.set_offset("kraken", 0.10)  # 10 % off: potentially erroneous
    sim.inject("gemini", "stall", seconds=30)  # no updates: delayed after 10 s
    run(11)
    result = sim.last_result
    assert "kraken" in result.excluded
    assert "gemini" in result.excluded
    assert "kraken" not in result.venues_used
    assert len(result.venues_used) == len(VENUES) - 2
    path_price = Decimal(repr(sim.path.price_at(clock[0])))
    assert abs(result.value / path_price - 1) < Decimal("0.001")  # type: ignore[operator]


async def test_crossed_fault_makes_the_true_book_cross_then_heals() -> None:
    async with World(("coinbase", "kraken")) as w:
        ws = await w.ws("coinbase")
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"})
        frames = await drain(ws)
        w.sim.inject("coinbase", "crossed", seconds=0.5)
        w.advance(2)
        assert w.sim.true_view("coinbase").crossed
        assert w.sim.last_result is not None
        w.advance(4)
        assert "coinbase" in w.sim.last_result.excluded
        frames += await drain(ws)
        book = Book()
        for text in frames:
            for ev in json.loads(text)["events"]:
                for u in ev.get("updates", []):
                    book.set(u["side"], e8(u["price_level"]), e8(u["new_quantity"]))
        bids, asks = book.top(1)
        assert bids[0][0] >= asks[0][0]  # the client sees the crossed book too
        w.advance(20)
        assert not w.sim.true_view("coinbase").crossed


async def test_stall_sends_nothing_then_resumes() -> None:
    async with World(("coinbase",)) as w:
        ws = await w.ws("coinbase")
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "heartbeats"})
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"})
        await drain(ws)
        w.sim.inject("coinbase", "stall", seconds=2)
        w.advance(30)
        assert await drain(ws, first=0.5) == []  # no data, no heartbeats
        w.advance(20)
        assert len(await drain(ws)) > 5


async def test_drop_fault_closes_sockets_and_plan_drops_on_schedule() -> None:
    async with World(("paxos", "lmax"), faults="lmax.drop=1s") as w:
        pax = await w.ws("paxos", "/BTCUSD")
        lmax = await w.ws("lmax")
        await drain(pax)
        w.sim.inject("paxos", "drop")
        await drain(pax)
        assert pax.closed
        w.advance(200)  # 10 s: an exponential(1 s) drop has surely come
        await drain(lmax)
        assert lmax.closed


# -- REST -------------------------------------------------------------------------------------
async def test_rest_snapshots_have_the_real_shapes_and_the_true_book() -> None:
    cb_real = json.loads(
        real_fixture("coinbase", "nautilus_rest_product_book_btcusd_2026-04-07.json").read_text()
    )
    kr_real = json.loads(
        real_fixture("kraken", "nautilus_rest_depth_xbtusdt_2025-11-11.json").read_text()
    )
    async with World(tuple(VENUES)) as w:
        w.advance(5)
        st, cb = await w.rest("coinbase", "/market/product_book?product_id=BTC-USD&limit=5")
        assert st == 200
        assert list(cb) == list(cb_real)
        assert list(cb["pricebook"]) == list(cb_real["pricebook"])
        assert [list(x) for x in cb["pricebook"]["bids"]] == [["price", "size"]] * 5
        got = [(e8(x["price"]), e8(x["size"])) for x in cb["pricebook"]["bids"]]
        assert got == true_top(w, "coinbase", 5)[0]

        st, kr = await w.rest("kraken", "/Depth?pair=XBTUSD&count=500")
        (pair,) = kr["result"]
        (real_pair,) = kr_real["result"]
        assert st == 200
        assert kr["error"] == []
        assert pair == "XXBTZUSD"
        row, real_row = kr["result"][pair]["asks"][0], kr_real["result"][real_pair]["asks"][0]
        assert [type(x) for x in row] == [type(x) for x in real_row] == [str, str, int]
        assert len(row[0].split(".")[1]) == len(real_row[0].split(".")[1]) == 5
        got = [(e8(p), e8(q)) for p, q, _ in kr["result"][pair]["asks"]]
        assert got == true_top(w, "kraken", 500)[1]

        st, bs = await w.rest("bitstamp", "/order_book/btcusd/")
        assert st == 200
        assert list(bs) == ["timestamp", "microtimestamp", "bids", "asks"]
        assert int(bs["microtimestamp"]) // 1_000_000 == int(bs["timestamp"])
        assert (
            [(e8(p), e8(q)) for p, q in bs["bids"]],
            [(e8(p), e8(q)) for p, q in bs["asks"]],
        ) == true_top(w, "bitstamp")

        st, gm = await w.rest("gemini", "/book/btcusd?limit_bids=0&limit_asks=0")
        assert st == 200
        assert list(gm["bids"][0]) == ["price", "amount", "timestamp"]
        assert len(gm["asks"]) == len(w.sim.true_view("gemini").asks)
        st, gm50 = await w.rest("gemini", "/book/btcusd")
        assert len(gm50["bids"]) == 50

        st, cc = await w.rest("cryptocom", "/get-book?instrument_name=BTC_USD&depth=50")
        assert st == 200
        assert cc["code"] == 0
        assert cc["method"] == "public/get-book"
        (data,) = cc["result"]["data"]
        assert cc["result"]["instrument_name"] == "BTC_USD"
        assert cc["result"]["depth"] == 50
        assert [(e8(p), e8(q)) for p, q, _ in data["asks"]] == true_top(w, "cryptocom", 50)[1]

        st, bl = await w.rest("bullish", "/markets/BTCUSDC/orderbook/hybrid")
        assert st == 200
        assert list(bl["bids"][0]) == ["price", "priceLevelQuantity"]
        assert isinstance(bl["sequenceNumber"], int)

        st, lm = await w.rest("lmax", "/orderbook/btc-usd")
        assert st == 200
        assert lm["instrument_id"] == "btc-usd"
        assert len(lm["bids"]) == 50

        st, px = await w.rest("paxos", "/markets/BTCUSD/order-book")
        assert st == 200
        assert list(px) == ["asks", "bids"]
        assert [(e8(x["price"]), e8(x["amount"])) for x in px["bids"]] == true_top(w, "paxos")[0]


async def test_rest_faults_429_5xx_slow() -> None:
    async with World(("kraken",)) as w:
        w.sim.inject("kraken", "http429")
        assert (await w.rest("kraken", "/Depth?pair=XBTUSD"))[0] == 429
        w.sim.inject("kraken", "http5xx")
        assert (await w.rest("kraken", "/Depth?pair=XBTUSD"))[0] == 503
        assert (await w.rest("kraken", "/Depth?pair=XBTUSD"))[0] == 200
        w.sim.inject("kraken", "slow")
        started = time.perf_counter()
        assert (await w.rest("kraken", "/Depth?pair=XBTUSD"))[0] == 200
        assert time.perf_counter() - started >= 0.95
        status, body = await w.rest("kraken", "/Depth?pair=ETHUSD")
        assert status == 200
        assert body == {"error": ["EQuery:Unknown asset pair"]}


# -- composition ------------------------------------------------------------------------------
async def test_mounts_on_a_shared_app_and_steps_on_its_own_clock() -> None:
    sim = SpotSim(path=PricePath(9, time.time_ns()), seed=9, venues=("kraken", "paxos"), tick_ms=20)
    app = web.Application()
    sim.setup(app, prefix="/spot")
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        eps = sim.endpoints(f"http://127.0.0.1:{port}", prefix="/spot")
        assert eps["paxos"].ws == f"ws://127.0.0.1:{port}/spot/paxos/marketdata"
        assert eps["kraken"].rest == f"http://127.0.0.1:{port}/spot/kraken/0/public"
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(eps["paxos"].ws + "/BTCUSD")
            frames = [json.loads((await ws.receive(timeout=2)).data) for _ in range(6)]
            assert frames[0]["type"] == "SNAPSHOT"  # then updates, stepped by the sim's timer
            assert {m["type"] for m in frames[1:]} == {"UPDATE"}
            async with http.get(eps["kraken"].rest + "/Depth?pair=XBTUSD&count=10") as resp:
                assert len((await resp.json())["result"]["XXBTZUSD"]["bids"]) == 10
            started = time.perf_counter()
            await runner.cleanup()
            assert time.perf_counter() - started < 3
            await drain(ws, idle=1.0)
            assert ws.closed
    finally:
        await runner.cleanup()


async def test_fast_mode_streams_many_changes() -> None:
    async with World(("coinbase",)) as w:
        fast = SpotSim(
            path=PricePath(3, T0),
            seed=3,
            venues=("coinbase",),
            fast=True,
            now_ns=lambda: w.t,
            autostep=False,
        )
        assert fast.tick_s == 0.01
        assert (
            fast.servers["coinbase"].book.params.rate
            == 20 * w.sim.servers["coinbase"].book.params.rate
        )
