"""The Kalshi world's REST v2: filters, pagination, books, CDN-like cache, auth, faults, and
the official ``kalshi_python_sync`` 3.2.0 client as an independent conformance check."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from kalshi_python_sync import Configuration, KalshiClient

from arbkit.core.config import Credentials
from arbkit.core.fixed import parse_fixed
from arbkit.sim.faults import Faults
from arbkit.sim.kalshi import TIME_HEADER, KalshiSim
from arbkit.sim.kalshi.auth import signed_headers
from arbkit.sim.path import PricePath


@dataclass
class World:
    sim: KalshiSim
    creds: Credentials
    session: aiohttp.ClientSession

    def signed(self, path: str) -> dict[str, str]:
        key = self.creds.load_private_key()
        return signed_headers(
            self.creds.key_id, key, "GET", "/trade-api/v2" + path, time.time_ns() // 10**6
        )

    async def get(self, path: str, *, signed: bool = False, **kw: Any) -> tuple[int, Any, Any]:
        headers = self.signed(path.split("?")[0]) if signed else {}
        async with self.session.get(self.sim.rest_url + path, headers=headers, **kw) as r:
            return r.status, await r.json(), r.headers


@pytest.fixture
async def world(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    opts: dict[str, Any] = {
        "index": PricePath(3, time.time_ns()).price_at,
        "seed": 3,
        "tick_s": 0.02,
    }
    opts.update(getattr(request, "param", {}))
    sim = KalshiSim(**opts)
    creds = sim.generate_credentials(tmp_path)
    await sim.start()
    async with aiohttp.ClientSession() as session:
        yield World(sim, creds, session)
    await sim.stop()


async def test_markets_filters_and_cursor_pagination(world: World) -> None:
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        status, body, _ = await world.get(f"/markets?limit=7&cursor={cursor}", signed=True)
        assert status == 200
        assert set(body) == {"markets", "cursor"}
        seen += [m["ticker"] for m in body["markets"]]
        pages += 1
        cursor = body["cursor"]
        if not cursor:
            break
    assert seen == world.sim.markets()
    assert len(set(seen)) == len(seen)
    assert pages > 2
    _, body, _ = await world.get("/markets?series_ticker=KXBTC15M&status=open", signed=True)
    assert [m["ticker"] for m in body["markets"]] == world.sim.markets("KXBTC15M", "active")
    assert all(m["status"] == "active" for m in body["markets"])
    _, body, _ = await world.get("/markets?status=unopened&series_ticker=KXBTCD", signed=True)
    assert body["markets"]
    assert all(m["status"] == "initialized" for m in body["markets"])
    two = world.sim.markets("KXBTC")[:2]
    _, body, _ = await world.get(f"/markets?tickers={','.join(two)}", signed=True)
    assert [m["ticker"] for m in body["markets"]] == two
    event = body["markets"][0]["event_ticker"]
    _, body, _ = await world.get(f"/markets?event_ticker={event}", signed=True)
    assert {m["event_ticker"] for m in body["markets"]} == {event}
    assert len(body["markets"]) == 12
    status, body, _ = await world.get("/markets?status=weird", signed=True)
    assert status == 400
    assert body["error"]["code"] == "invalid_parameters"


async def test_market_orderbook_series_status_and_404s(world: World) -> None:
    t = world.sim.markets("KXBTC15M", "active")[0]
    status, body, headers = await world.get(f"/markets/{t}")
    assert status == 200
    assert body["market"]["ticker"] == t
    assert body["market"]["strike_type"] == "greater_or_equal"
    assert "Date" in headers
    assert abs(int(headers[TIME_HEADER]) - time.time_ns()) < 5 * 10**9
    status, body, _ = await world.get("/markets/KXBTC15M-26JAN010000-00")
    assert status == 404
    assert body == {
        "error": {"code": "market_not_found", "message": "market not found", "details": ""}
    }
    world.sim.pause()
    status, body, _ = await world.get(f"/markets/{t}/orderbook", signed=True)
    yes, no = world.sim.book(t)
    fp = body["orderbook_fp"]
    assert {parse_fixed(p, 4): parse_fixed(q, 2) for p, q in fp["yes_dollars"]} == yes
    assert {parse_fixed(p, 4): parse_fixed(q, 2) for p, q in fp["no_dollars"]} == no
    assert [p for p, _ in fp["yes_dollars"]] == sorted(p for p, _ in fp["yes_dollars"])
    _, body, _ = await world.get(f"/markets/{t}/orderbook?depth=2", signed=True)
    assert [parse_fixed(p, 4) for p, _ in body["orderbook_fp"]["yes_dollars"]] == sorted(yes)[-2:]
    status, body, _ = await world.get("/series/KXBTC15M")
    assert status == 200
    assert (body["series"]["fee_type"], body["series"]["fee_multiplier"]) == ("quadratic", 1.0)
    assert (await world.get("/series/NOPE"))[0] == 404
    status, body, _ = await world.get("/exchange/status")
    assert body == {
        "exchange_active": True,
        "trading_active": True,
        "exchange_estimated_resume_time": None,
    }
    assert (await world.get("/portfolio/balance"))[0] == 404


@pytest.mark.parametrize("world", [{"rest_cache_s": 0.6, "update_hz": 50.0}], indirect=True)
async def test_unsigned_books_come_from_a_cache_signed_ones_do_not(world: World) -> None:
    t = world.sim.markets("KXBTCD", "active")[5]
    _, first, h1 = await world.get(f"/markets/{t}/orderbook")
    assert h1["Cache-Control"] == "public, max-age=0"
    assert "Age" not in h1
    changed = False
    for _ in range(50):
        await asyncio.sleep(0.02)
        _, fresh, _ = await world.get(f"/markets/{t}/orderbook", signed=True)
        if fresh != first:
            changed = True
            break
    assert changed, "the world's book should move"
    _, cached, h2 = await world.get(f"/markets/{t}/orderbook")
    assert cached == first
    assert h2["Age"] == "0"
    assert h2["X-Cache"] == "Hit from cloudfront"
    await asyncio.sleep(0.6)
    _, _expired, h3 = await world.get(f"/markets/{t}/orderbook")
    assert "Age" not in h3


async def test_bad_signature_is_401_and_faults_answer_429_5xx_slowly(world: World) -> None:
    headers = world.signed("/markets")
    headers["KALSHI-ACCESS-SIGNATURE"] = headers["KALSHI-ACCESS-SIGNATURE"][::-1]
    async with world.session.get(world.sim.rest_url + "/markets", headers=headers) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "authentication_error"
    world.sim.fail_rest(429)
    world.sim.fail_rest(503)
    status, body, headers = await world.get("/markets")
    assert status == 429
    assert body["error"]["code"] == "too_many_requests"
    assert "Retry-After" not in headers
    assert (await world.get("/markets"))[0] == 503
    assert (await world.get("/markets"))[0] == 200


@pytest.mark.parametrize(
    "world", [{"faults": Faults({"slow": 0.3, "http5xx": 1.0})}], indirect=True
)
async def test_fault_spec_drives_rest(world: World) -> None:
    started = time.monotonic()
    status, _, _ = await world.get("/exchange/status")
    assert status == 503
    assert time.monotonic() - started >= 0.3


# --- the official SDK (legacy era) ------------------------------------------------------------


@pytest.mark.parametrize("world", [{"era": "legacy"}], indirect=True)
async def test_official_sdk_reads_the_legacy_world(world: World) -> None:
    sim = world.sim
    t15 = sim.markets("KXBTC15M", "active")[0]
    sim.pause()

    def run() -> dict[str, Any]:
        public = KalshiClient(Configuration(host=sim.rest_url))
        cfg = Configuration(host=sim.rest_url)
        cfg.api_key_id = world.creds.key_id
        cfg.private_key_pem = world.creds.private_key_path.read_text()
        signed = KalshiClient(cfg)
        out: dict[str, Any] = {}
        out["open"] = public.get_markets(series_ticker="KXBTC15M", status="open")
        out["all"] = signed.get_markets(limit=1000)
        out["one"] = signed.get_market(t15)
        out["series"] = public.get_series("KXBTC15M")
        out["status"] = signed.get_exchange_status()
        raw = signed.get_market_orderbook_without_preload_content(t15)
        out["book"] = (raw.status, orjson.loads(raw.data))
        return out

    got = await asyncio.to_thread(run)
    assert [m.ticker for m in got["open"].markets] == [t15]
    assert got["open"].cursor == ""
    assert {m.ticker for m in got["all"].markets} == set(sim.markets())
    market = got["one"].market
    m = sim.exchange.markets[t15]
    assert market.status == "active"
    assert market.floor_strike == m.floor_e2 / 100
    assert market.yes_bid == max(sim.book(t15)[0], default=0) // 100
    assert got["series"].series.fee_type == "quadratic"
    assert got["series"].series.fee_multiplier == 1
    assert got["status"].trading_active is True
    status, book = got["book"]
    yes, no = sim.book(t15)
    assert status == 200
    assert set(book) == {"orderbook"}
    assert {p * 100: q * 100 for p, q in book["orderbook"]["yes"] or []} == yes
    assert {p * 100: q * 100 for p, q in book["orderbook"]["no"] or []} == no


async def test_mounts_on_a_shared_app(tmp_path: Path) -> None:
    sim = KalshiSim(index=lambda _t: 90_000.0, seed=1)
    creds = sim.generate_credentials(tmp_path)
    app = web.Application()
    sim.setup(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sim.set_address("127.0.0.1", port)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(sim.rest_url + "/markets?status=open") as r:
                assert r.status == 200
                assert len((await r.json())["markets"]) == len(sim.markets(status="active"))
            key = creds.load_private_key()
            h = signed_headers(
                creds.key_id, key, "GET", "/trade-api/ws/v2", time.time_ns() // 10**6
            )
            async with session.ws_connect(sim.ws_url, headers=h) as ws:
                await ws.send_str('{"id":1,"cmd":"list_subscriptions"}')
                assert orjson.loads((await ws.receive(timeout=3)).data) == {
                    "type": "ok",
                    "id": 1,
                    "msg": [],
                }
    finally:
        await runner.cleanup()


async def test_module_entry_serves_and_prints_its_endpoints(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arbkit.sim.kalshi",
        "--era",
        "transition",
        "--key-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        info = orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert Path(info["private_key_path"]).parent == tmp_path
        url = info["rest_url"] + "/markets?series_ticker=KXBTCD&limit=1"
        async with aiohttp.ClientSession() as session, session.get(url) as r:
            body = await r.json()
        market = body["markets"][0]
        assert "yes_bid" in market
        assert "volume_fp" in market
        assert info["ws_url"].endswith("/trade-api/ws/v2")
    finally:
        proc.terminate()
        await proc.wait()
