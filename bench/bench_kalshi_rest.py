"""Benchmarks of the Kalshi REST side: book-poll parsing, market objects, signing, loopback RTT.

REST runs at ~20 requests/s on the Basic tier, so these only show that the client is never
the bottleneck (and what a loopback round trip costs: the floor under REST latency figures).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from arbkit.core.clock import now_ns
from arbkit.venues.kalshi.auth import sign_headers
from arbkit.venues.kalshi.limiter import TokenBucket
from arbkit.venues.kalshi.markets import Market
from arbkit.venues.kalshi.rest import KalshiRest, RestResponse, book_from_response

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "tests/data/real/kalshi/cockpit_rest_market_and_orderbook_2026-08-09.json"
)


def _rate(fn: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


async def _loopback_rtt_ms(body: bytes, polls: int) -> float:
    async def book(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/trade-api/v2/markets/{t}/orderbook", book)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rtts = []
    try:
        url = f"http://127.0.0.1:{port}/trade-api/v2"
        async with KalshiRest(url, limiter=TokenBucket(1e9)) as client:
            for _ in range(polls):
                r = await client.orderbook_response("KXBTC15M-26NOV241700-00")
                rtts.append(r.recv_ns - r.sent_ns)
    finally:
        await runner.cleanup()
    return statistics.median(rtts) / 1e6


def run() -> list[dict[str, object]]:
    doc = orjson.loads(FIXTURE.read_bytes())
    body = orjson.dumps(doc["orderbook"])
    market = doc["single"]["market"]
    t = now_ns()
    response = RestResponse(200, body, t, t, None, None)
    polls = _rate(lambda: book_from_response("M", response).rows(1), 20_000)
    markets = _rate(lambda: Market.from_api(market), 20_000)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signs = _rate(lambda: sign_headers(key, "id", "GET", "/trade-api/v2/markets"), 300)
    rtt = asyncio.run(_loopback_rtt_ms(body, 300))
    return [
        {
            "name": "kalshi_rest.book_poll_parse",
            "value": round(polls),
            "unit": "polls/s",
            "target": ">= 5k/s",
            "note": "16-level real orderbook_fp body -> rows; the top tier allows 400 req/s",
        },
        {
            "name": "kalshi_rest.market_from_api",
            "value": round(markets),
            "unit": "markets/s",
            "target": ">= 5k/s",
            "note": "real 2026 market object -> Market (exact ints, times); discovery lists ~100s",
        },
        {
            "name": "kalshi_rest.sign_request",
            "value": round(signs),
            "unit": "signatures/s",
            "target": ">= 200/s",
            "note": "RSA-2048 PSS-SHA256 over ts+method+path (Basic tier needs 20/s)",
        },
        {
            "name": "kalshi_rest.loopback_poll_rtt",
            "value": round(rtt, 3),
            "unit": "ms (median)",
            "target": "<= 2 ms",
            "note": "sent_ns -> recv_ns of one orderbook poll to an aiohttp server on 127.0.0.1",
        },
    ]
