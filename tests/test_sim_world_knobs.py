"""The world's documented knobs and the REST reads strategies need (INTERFACES §6): CDN cache
age, maker lag, WebSocket delivery delay, readiness, series fee fields, fee changes and the
exchange status with Kalshi's weekly maintenance window."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest

from arbkit.sim.kalshi import KalshiSim
from arbkit.sim.kalshi.auth import signed_headers
from arbkit.sim.kalshi.markets import NS, FeeChange, maintenance_end_ns
from arbkit.sim.path import PricePath
from arbkit.sim.world import World

SERIES = ("KXBTC15M", "KXBTCD", "KXBTC")


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * NS


async def get(url: str) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, await r.json(), r.headers


async def test_world_defaults_are_the_documented_ones() -> None:
    w = World(seed=2)
    assert w.kalshi.cdn.ttl_s == 15.0
    assert w.kalshi.exchange.lag_s == 5.0
    assert w.kalshi.ws_delay_s == 0.0
    assert w.kalshi.maintenance is False


async def test_in_process_world_is_ready_when_start_returns() -> None:
    async with World(seed=4, rest_cache_s=15.0) as w:
        for series in SERIES:
            url = f"{w.kalshi.rest_url}/markets?series_ticker={series}&status=open"
            status, body, _ = await get(url)
            assert status == 200
            assert body["markets"], series
        ticker = w.kalshi.markets("KXBTC15M", "active")[0]
        yes, no = w.kalshi.book(ticker)
        assert yes, "the open 15-minute market is quoted"
        assert no, "the open 15-minute market is quoted"
        for venue in w.spot.servers:
            view = w.spot.true_view(venue)
            assert view.bids, venue
            assert view.asks, venue


async def test_rest_cache_age_and_maker_lag_are_world_keywords() -> None:
    async with World(seed=4, rest_cache_s=3.0, maker_lag_s=1.5) as w:
        assert w.kalshi.exchange.lag_s == 1.5
        assert all(q.lag_s == 1.5 for q in w.kalshi.exchange.quoters.values())
        url = f"{w.kalshi.rest_url}/markets?series_ticker=KXBTC15M&status=open"
        _, first, h1 = await get(url)
        _, second, h2 = await get(url)
        assert h1["X-Cache"].startswith("Miss")
        assert h2["X-Cache"].startswith("Hit")
        assert h2["Cache-Control"] == "public, max-age=3"
        assert second == first


async def test_ws_delay_holds_every_frame_back() -> None:
    async with World(seed=4, ws_delay_s=0.3) as w:
        creds = w.credentials
        assert creds is not None
        path = "/trade-api/ws/v2"
        key = creds.load_private_key()
        h = signed_headers(creds.key_id, key, "GET", path, time.time_ns() // 10**6)
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(w.kalshi.ws_url, headers=h) as ws,
        ):
            for _ in range(3):
                t0 = time.monotonic()
                await ws.send_str('{"id": 5, "cmd": "list_subscriptions"}')
                msg = await ws.receive(timeout=10)
                assert orjson.loads(msg.data)["type"] == "ok"
                assert time.monotonic() - t0 >= 0.3


async def test_nothing_built_before_ready_is_cached() -> None:
    path = PricePath(3, time.time_ns())
    live = {"on": False}

    def index(t_ns: int) -> float | None:
        return path.price_at(t_ns) if live["on"] else None

    sim = KalshiSim(index=index, seed=3, rest_cache_s=60.0, tick_s=0.02)
    await sim.start()
    try:
        url = f"{sim.rest_url}/markets?series_ticker=KXBTC15M&status=open"
        status, body, headers = await get(url)
        assert status == 200
        assert body["markets"] == []
        assert not sim.ready
        assert "X-Cache" not in headers, "a response built before ready must not be stored"
        live["on"] = True
        await sim.wait_ready(30)
        _, body, headers = await get(url)
        assert body["markets"], "the empty pre-ready list was served from the cache"
        assert headers["X-Cache"].startswith("Miss")
    finally:
        await sim.stop()


def fixed_sim(now: int, **kw: Any) -> KalshiSim:
    path = PricePath(3, now)
    clock: Callable[[], int] = lambda: now  # noqa: E731
    return KalshiSim(index=path.price_at, seed=3, now_ns=clock, **kw)


async def test_series_carries_the_fee_fields() -> None:
    sim = fixed_sim(time.time_ns())
    await sim.start()
    try:
        status, body, _ = await get(f"{sim.rest_url}/series/KXBTC15M")
        assert status == 200
        series = body["series"]
        # reference §5: KXBTC15M fee_type "quadratic", fee_multiplier 1 (live capture)
        assert series["fee_type"] == "quadratic"
        assert series["fee_multiplier"] == 1
        assert (await get(f"{sim.rest_url}/series/NOPE"))[0] == 404
    finally:
        await sim.stop()


async def test_fee_changes_lists_scheduled_changes() -> None:
    now = ns("2026-12-01T12:00:00")
    changes = [
        FeeChange("a", "KXBTC15M", "quadratic_with_maker_fees", 1.0, ns("2026-12-10T00:00:00")),
        FeeChange("b", "KXBTCD", "quadratic", 0.5, ns("2026-12-20T00:00:00")),
        FeeChange("c", "KXBTC15M", "quadratic", 1.0, ns("2026-11-01T00:00:00")),
    ]
    sim = fixed_sim(now, fee_changes=changes)
    await sim.start()
    try:
        base = f"{sim.rest_url}/series/fee_changes"
        _, body, _ = await get(base)
        assert [c["id"] for c in body["series_fee_change_arr"]] == ["a", "b"]
        assert body["series_fee_change_arr"][0] == {
            "id": "a",
            "series_ticker": "KXBTC15M",
            "fee_type": "quadratic_with_maker_fees",
            "fee_multiplier": 1.0,
            "scheduled_ts": "2026-12-10T00:00:00Z",
        }
        _, body, _ = await get(f"{base}?series_ticker=KXBTC15M&show_historical=true")
        assert [c["id"] for c in body["series_fee_change_arr"]] == ["c", "a"]
    finally:
        await sim.stop()


@pytest.mark.parametrize(
    ("utc", "resume_utc"),
    [
        ("2026-12-03T08:30:00", "2026-12-03T10:00:00"),  # Thursday 03:30 EST
        ("2026-12-03T09:59:59", "2026-12-03T10:00:00"),
        ("2026-12-03T07:59:59", None),  # Thursday 02:59 EST
        ("2026-12-03T10:00:00", None),
        ("2026-12-02T08:30:00", None),  # a Wednesday
        ("2026-07-02T07:00:00", "2026-07-02T09:00:00"),  # Thursday 03:00 EDT
    ],
)
def test_maintenance_window_is_thursday_3_to_5_eastern(utc: str, resume_utc: str | None) -> None:
    expected = None if resume_utc is None else ns(resume_utc)
    assert maintenance_end_ns(ns(utc)) == expected


@pytest.mark.parametrize("maintenance", [True, False])
async def test_exchange_status_follows_the_window_when_enabled(maintenance: bool) -> None:
    sim = fixed_sim(ns("2026-12-03T08:30:00"), maintenance=maintenance)
    await sim.start()
    try:
        status, body, _ = await get(f"{sim.rest_url}/exchange/status")
        assert status == 200
        assert body["exchange_active"] is True
        assert body["trading_active"] is not maintenance
        resume = "2026-12-03T10:00:00Z" if maintenance else None
        assert body["exchange_estimated_resume_time"] == resume
    finally:
        await sim.stop()
