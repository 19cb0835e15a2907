"""Kalshi REST client against a real aiohttp server on loopback, and the REST wire formats."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from arbkit.core.clock import ClockOffset
from arbkit.core.errors import ArbkitError, ProtocolError
from arbkit.core.events import EventRow
from arbkit.core.sink import MemorySink
from arbkit.venues.kalshi.auth import Signer
from arbkit.venues.kalshi.limiter import TokenBucket
from arbkit.venues.kalshi.rest import (
    SERVER_TIME_HEADER,
    KalshiApiError,
    KalshiAuthError,
    KalshiConnectionError,
    KalshiNotFoundError,
    KalshiRest,
    KalshiServerError,
    api_error,
    parse_orderbook,
)
from tests.fixtures import real_fixture

PREFIX = "/trade-api/v2"


def market_obj(ticker: str, **extra: Any) -> dict[str, Any]:
    """A current-era market object (only the fields arbkit reads)."""
    series, event_code, *_ = ticker.split("-")
    obj = {
        "ticker": ticker,
        "event_ticker": f"{series}-{event_code}",
        "market_type": "binary",
        "status": "active",
        "open_time": "2026-11-24T21:00:00Z",
        "close_time": "2099-01-01T00:00:00Z",
        "strike_type": "greater",
        "floor_strike": 90000,
        "yes_bid_dollars": "0.4500",
        "yes_ask_dollars": "0.4700",
    }
    obj.update(extra)
    return obj


@dataclass
class Stub:
    """A tiny Kalshi REST double: scripted failures, pagination, optional signature check."""

    markets: list[dict[str, Any]] = field(default_factory=list)
    books: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Any] = field(default_factory=dict)
    fail: dict[str, list[int]] = field(default_factory=dict)
    """path -> statuses to answer before succeeding (consumed one per request)."""
    page_size: int = 2
    delay: float = 0.0
    age: str | None = None
    date_offset_s: int = 0
    server_ns_offset: int | None = None
    """When set, also send the embedded world's ns clock header, shifted by this much."""
    public_key: rsa.RSAPublicKey | None = None
    requests: list[web.Request] = field(default_factory=list)
    failing_series: set[str] = field(default_factory=set)
    retry_after: str | None = None
    """A ``Retry-After`` header for scripted 429s (Kalshi sends none; a proxy might)."""

    def _error(self, status: int, code: str, message: str) -> web.Response:
        body = {"error": {"code": code, "message": message, "details": "stub"}}
        response = web.json_response(body, status=status)
        if status == 429 and self.retry_after is not None:
            response.headers["Retry-After"] = self.retry_after
        return response

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        script = self.fail.get(request.path)
        if script:
            status = script.pop(0)
            return self._error(status, "stub_failure", f"scripted {status}")
        if self.public_key is not None:
            ts = request.headers.get("KALSHI-ACCESS-TIMESTAMP", "")
            sig = request.headers.get("KALSHI-ACCESS-SIGNATURE", "")
            try:
                self.public_key.verify(
                    base64.b64decode(sig),
                    f"{ts}{request.method}{request.path}".encode(),
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                    hashes.SHA256(),
                )
            except Exception:
                return self._error(401, "authentication_error", "invalid signature")
        response: web.StreamResponse = await handler(request)
        if self.age is not None:
            response.headers["Age"] = self.age
        return response

    async def get_markets(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("series_ticker") in self.failing_series:
            return self._error(503, "service_unavailable", "down")
        rows = [
            m
            for m in self.markets
            if q.get("series_ticker") in (None, m["event_ticker"].split("-")[0])
            and ("tickers" not in q or m["ticker"] in q["tickers"].split(","))
            and (q.get("status") != "open" or m["status"] == "active")
            and (q.get("status") != "unopened" or m["status"] == "initialized")
        ]
        start = int(q.get("cursor") or 0)
        size = min(int(q.get("limit", 100)), self.page_size)
        end = start + size
        cursor = str(end) if end < len(rows) else ""
        return web.json_response({"markets": rows[start:end], "cursor": cursor})

    async def get_market(self, request: web.Request) -> web.Response:
        for m in self.markets:
            if m["ticker"] == request.match_info["ticker"]:
                return web.json_response({"market": m})
        return self._error(404, "market_not_found", "market not found")

    async def get_book(self, request: web.Request) -> web.Response:
        book = self.books.get(request.match_info["ticker"])
        if book is None:
            return self._error(404, "market_not_found", "market not found")
        if isinstance(book, str):
            return web.Response(text=book, content_type="application/json")
        return web.json_response(book)

    async def get_series(self, request: web.Request) -> web.Response:
        s = self.series.get(request.match_info["ticker"])
        if s is None:
            return self._error(404, "not_found", "series not found")
        return web.json_response({"series": s})

    async def get_status(self, request: web.Request) -> web.Response:
        stamp = datetime.fromtimestamp(time.time() + self.date_offset_s, UTC)
        headers = {"Date": format_datetime(stamp, usegmt=True)}
        if self.server_ns_offset is not None:
            headers[SERVER_TIME_HEADER] = str(time.time_ns() + self.server_ns_offset)
        body = {
            "exchange_active": True,
            "trading_active": False,
            "exchange_estimated_resume_time": None,
        }
        return web.json_response(body, headers=headers)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get(f"{PREFIX}/markets", self.get_markets)
        app.router.add_get(f"{PREFIX}/markets/{{ticker}}", self.get_market)
        app.router.add_get(f"{PREFIX}/markets/{{ticker}}/orderbook", self.get_book)
        app.router.add_get(f"{PREFIX}/series/{{ticker}}", self.get_series)
        app.router.add_get(f"{PREFIX}/exchange/status", self.get_status)
        return app


async def serve(stub: Stub) -> tuple[web.AppRunner, str]:
    """Start ``stub`` on 127.0.0.1:0; returns the runner and the REST base URL."""
    runner = web.AppRunner(stub.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}{PREFIX}"


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
async def base_url(stub: Stub) -> AsyncIterator[str]:
    runner, url = await serve(stub)
    yield url
    await runner.cleanup()


def fast_client(url: str, **kw: Any) -> KalshiRest:
    kw.setdefault("limiter", TokenBucket(1e6))
    return KalshiRest(url, backoff_initial=0.05, backoff_max=0.2, **kw)


def cockpit() -> dict[str, Any]:
    path = real_fixture("kalshi", "cockpit_rest_market_and_orderbook_2026-08-09.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


# --- order-book shapes -------------------------------------------------------------------------

COCKPIT_LEVELS = [
    ("yes", 5800, 55200),
    ("yes", 5900, 31200),
    ("yes", 6000, 19200),
    ("yes", 6100, 70300),
    ("yes", 6200, 6400),
    ("yes", 6400, 100),
    ("yes", 6700, 100),
    ("yes", 8500, 85000),
    ("yes", 8800, 11446),
    ("yes", 8900, 34349),
    ("no", 100, 105832800),
    ("no", 200, 300800),
    ("no", 300, 230700),
    ("no", 400, 70955),
    ("no", 500, 16627),
    ("no", 600, 64100),
]


def test_real_orderbook_fixture_parses_exactly() -> None:
    doc = cockpit()
    levels = parse_orderbook(doc["orderbook"])
    assert levels == COCKPIT_LEVELS
    # Best YES bid and best NO bid (last levels) agree with the market object's quotes.
    market = doc["single"]["market"]
    assert levels[9][1] == 8900
    assert market["yes_bid_dollars"] == "0.8900"
    assert 10000 - levels[-1][1] == 9400
    assert market["yes_ask_dollars"] == "0.9400"


def test_transition_orderbook_prefers_fp() -> None:
    body = {
        "orderbook": {"yes": [[15, 100]], "no": [[20, 5]], "yes_dollars": [["0.15", 100]]},
        "orderbook_fp": {"yes_dollars": [["0.1500", "100.50"]], "no_dollars": [["0.2000", "5.00"]]},
    }
    assert parse_orderbook(body) == [("yes", 1500, 10050), ("no", 2000, 500)]


def test_legacy_orderbook_shapes() -> None:
    cents = {"orderbook": {"yes": [[1, 200], [15, 100]], "no": [[20, 100]]}}
    assert parse_orderbook(cents) == [
        ("yes", 100, 20000),
        ("yes", 1500, 10000),
        ("no", 2000, 10000),
    ]
    with_dollars = {
        "orderbook": {
            "yes": [[1, 200]],
            "no": None,
            "yes_dollars": [["0.0150", 200]],
            "no_dollars": None,
        }
    }
    assert parse_orderbook(with_dollars) == [("yes", 150, 20000)]
    assert parse_orderbook({"orderbook": {"yes": None, "no": None}}) == []
    assert parse_orderbook({"orderbook": {}}) == []
    assert parse_orderbook({"orderbook_fp": {"yes_dollars": [], "no_dollars": []}}) == []
    with pytest.raises(ProtocolError, match="orderbook_fp"):
        parse_orderbook({"book": {}})
    with pytest.raises(ValueError, match="decimal places"):
        parse_orderbook({"orderbook_fp": {"yes_dollars": [["0.123456", "1"]]}})
    with pytest.raises(ValueError, match="outside"):
        parse_orderbook({"orderbook_fp": {"yes_dollars": [["1.0100", "1"]]}})
    with pytest.raises(ValueError, match="integer cents"):
        parse_orderbook({"orderbook": {"yes": [[101, 1]]}})
    with pytest.raises(ValueError, match="integer cents"):
        parse_orderbook({"orderbook": {"no": [["15", 1]]}})


# --- client ------------------------------------------------------------------------------------


async def test_markets_paginates_with_filters(stub: Stub, base_url: str) -> None:
    stub.markets = [market_obj(f"KXBTCD-26NOV2417-T{90000 + i}") for i in range(5)]
    stub.markets.append(market_obj("KXBTC15M-26NOV241700-00", status="initialized"))
    async with fast_client(base_url) as client:
        got = await client.markets(series_ticker="KXBTCD", status="open")
        assert [m.ticker for m in got] == [m["ticker"] for m in stub.markets[:5]]
        pages = [r for r in stub.requests if r.path == f"{PREFIX}/markets"]
        assert len(pages) == 3
        assert [r.query.get("cursor") for r in pages] == [None, "2", "4"]
        assert all(r.query["series_ticker"] == "KXBTCD" for r in pages)
        assert all(r.query["status"] == "open" for r in pages)
        picked = await client.markets(
            tickers=["KXBTCD-26NOV2417-T90003", "KXBTC15M-26NOV241700-00"]
        )
        assert [m.ticker for m in picked] == ["KXBTCD-26NOV2417-T90003", "KXBTC15M-26NOV241700-00"]
        with pytest.raises(ValueError, match="status filter"):
            await client.markets(status="active")


async def test_market_and_404_body(stub: Stub, base_url: str) -> None:
    stub.markets = [cockpit()["single"]["market"]]
    async with fast_client(base_url) as client:
        m = await client.market("KXNCAAFGAME-26SEP19MSUND-ND")
        assert (m.yes_bid_e4, m.yes_ask_e4) == (8900, 9400)
        with pytest.raises(KalshiNotFoundError) as info:
            await client.market("KXBTC15M-26JAN010000-00")
    err = info.value
    assert isinstance(err, ArbkitError)
    assert (err.status, err.code, err.message, err.details) == (
        404,
        "market_not_found",
        "market not found",
        "stub",
    )
    assert "market not found" in str(err)
    assert "check the ticker" in str(err)


async def test_429_then_success_backs_off_and_records(stub: Stub, base_url: str) -> None:
    stub.series = {"KXBTC15M": {"ticker": "KXBTC15M", "fee_type": "quadratic", "fee_multiplier": 1}}
    stub.fail[f"{PREFIX}/series/KXBTC15M"] = [429, 429, 503]
    sink = MemorySink()
    async with fast_client(base_url, sink=sink) as client:
        started = time.monotonic()
        series = await client.series("KXBTC15M")
        elapsed = time.monotonic() - started
    assert (series.fee_type, str(series.fee_multiplier)) == ("quadratic", "1")
    assert len(stub.requests) == 4
    # Delays 0.05, 0.10, 0.20 (capped at 0.2) each within ±20 % jitter.
    assert 0.8 * 0.35 <= elapsed < 2.0
    events = [r for r in sink.rows["events"] if isinstance(r, EventRow)]
    assert [(e.kind, e.got) for e in events] == [
        ("rate_limit", 429),
        ("rate_limit", 429),
        ("error", 503),
    ]
    assert all(e.stream == "kalshi_rest" and e.subject == "/series/KXBTC15M" for e in events)
    assert "retry in" in events[0].detail
    assert sink.counters["kalshi_rest"]["rate_limits"] == 2
    assert sink.counters["kalshi_rest"]["errors"] == 1
    assert sink.counters["kalshi_rest"]["requests"] == 4


async def test_5xx_exhausted_raises_with_server_message(stub: Stub, base_url: str) -> None:
    stub.fail[f"{PREFIX}/series/KXBTC"] = [500, 502, 503]
    async with fast_client(base_url, retries=2) as client:
        with pytest.raises(KalshiServerError) as info:
            await client.series("KXBTC")
    assert info.value.status == 503
    assert "scripted 503" in str(info.value)
    assert len(stub.requests) == 3


async def test_401_says_which_settings_to_check(stub: Stub, base_url: str) -> None:
    stub.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    wrong = Signer(rsa.generate_private_key(public_exponent=65537, key_size=2048), "key-id-123")
    async with fast_client(base_url, signer=wrong) as client:
        with pytest.raises(KalshiAuthError) as info:
            await client.market("KXBTC15M-26JAN010000-00")
    text = str(info.value)
    assert "KALSHI_API_KEY_ID" in text
    assert "KALSHI_PRIVATE_KEY_PATH" in text
    assert "invalid signature" in text
    assert "key-id-123" not in text


async def test_signed_requests_verify_on_full_path_without_query(stub: Stub, base_url: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stub.public_key = key.public_key()
    stub.markets = [market_obj("KXBTCD-26NOV2417-T90000")]
    async with fast_client(base_url, signer=Signer(key, "kid")) as client:
        got = await client.markets(series_ticker="KXBTCD", status="open")
    assert [m.ticker for m in got] == ["KXBTCD-26NOV2417-T90000"]
    assert stub.requests[0].headers["KALSHI-ACCESS-KEY"] == "kid"


async def test_unreachable_host_raises_after_retries() -> None:
    runner, url = await serve(Stub())
    await runner.cleanup()  # nothing listens on that port any more
    sink = MemorySink()
    async with fast_client(url, sink=sink, retries=1) as client:
        with pytest.raises(KalshiConnectionError, match="ARBKIT_KALSHI_REST_URL"):
            await client.exchange_status()
    async with fast_client(url, sink=sink, retries=2) as client:
        with pytest.raises(KalshiConnectionError):
            await client.market("X")
    assert [e.kind for e in sink.rows["events"] if isinstance(e, EventRow)] == ["error"] * 4
    assert sink.counters["kalshi_rest"]["errors"] == 4


async def test_error_without_json_body() -> None:
    async def teapot(request: web.Request) -> web.Response:
        return web.Response(status=418, text="<html>I am a teapot</html>")

    app = web.Application()
    app.router.add_get(f"{PREFIX}/series/X", teapot)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with fast_client(f"http://127.0.0.1:{port}{PREFIX}") as client:
            with pytest.raises(KalshiApiError, match=r"HTTP 418.*teapot") as info:
                await client.series("X")
        assert type(info.value) is KalshiApiError
    finally:
        await runner.cleanup()


async def test_exchange_status_and_clock_probe(stub: Stub, base_url: str) -> None:
    stub.date_offset_s = 100
    clock = ClockOffset()
    async with fast_client(base_url) as client:
        for _ in range(3):
            status = await client.exchange_status(clock)
    assert (status.exchange_active, status.trading_active, status.estimated_resume_ns) == (
        True,
        False,
        None,
    )
    assert clock.samples == 3
    assert clock.offset_ns is not None
    # The Date header has one-second resolution: the estimate is good to about ±0.5 s.
    assert abs(clock.offset_ns - 100 * 10**9) <= 600_000_000

    # The embedded world's ns header, when sent, wins over Date (to well under a second).
    stub.server_ns_offset = 2_345_000_000
    fine = ClockOffset()
    async with fast_client(base_url) as client:
        await client.exchange_status(fine)
    assert fine.offset_ns is not None
    assert abs(fine.offset_ns - 2_345_000_000) < 50_000_000


async def test_orderbook_endpoint_with_age_and_depth(stub: Stub, base_url: str) -> None:
    stub.books["KXNCAAFGAME-26SEP19MSUND-ND"] = cockpit()["orderbook"]
    stub.age = "14"
    async with fast_client(base_url) as client:
        book = await client.orderbook("KXNCAAFGAME-26SEP19MSUND-ND", depth=5)
        with pytest.raises(KalshiNotFoundError):
            await client.orderbook("NOPE")
    assert book.levels == COCKPIT_LEVELS
    assert book.response.age_s == 14
    assert stub.requests[0].query["depth"] == "5"
    rows = book.rows(7)
    assert len(rows) == len(COCKPIT_LEVELS)
    assert {(r.poll_id, r.status, r.market, r.age_s) for r in rows} == {
        (7, 200, "KXNCAAFGAME-26SEP19MSUND-ND", 14)
    }
    assert [(r.side, r.price_e4, r.qty_e2) for r in rows] == COCKPIT_LEVELS


# --- limiter -----------------------------------------------------------------------------------


def test_token_bucket_schedule() -> None:
    now = [0.0]
    bucket = TokenBucket(200, clock=lambda: now[0])
    waits = [bucket.reserve(10) for _ in range(25)]
    assert waits[:20] == [0.0] * 20  # a full second's worth of tokens up front
    assert waits[20:] == pytest.approx([0.05, 0.10, 0.15, 0.20, 0.25])
    now[0] = 10.0  # refill is capped at the capacity
    assert bucket.reserve(200) == 0.0
    assert bucket.reserve(10) == pytest.approx(0.05)
    assert TokenBucket.for_tier("Premier").rate == 1000
    with pytest.raises(ArbkitError, match="tier"):
        TokenBucket.for_tier("gold")


async def test_limiter_paces_real_requests(stub: Stub, base_url: str) -> None:
    # 100 tokens/s at 10 tokens per request, one request of burst: 10 requests/s.
    async with KalshiRest(base_url, limiter=TokenBucket(100, capacity=10)) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.exchange_status() for _ in range(6)))
        elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.5
    assert len(stub.requests) == 6


async def test_unusable_market_objects_are_skipped_and_recorded(stub: Stub, base_url: str) -> None:
    broken = market_obj("KXBTCD-26NOV2417-T90500")
    del broken["open_time"]
    stub.markets = [
        market_obj("KXBTCD-26NOV2417-T90000"),
        broken,
        market_obj("KXBTCD-26NOV2417-T91000"),
    ]
    sink = MemorySink()
    async with fast_client(base_url, sink=sink) as client:
        got = await client.markets(series_ticker="KXBTCD")
    assert [m.ticker for m in got] == ["KXBTCD-26NOV2417-T90000", "KXBTCD-26NOV2417-T91000"]
    (event,) = [e for e in sink.rows["events"] if isinstance(e, EventRow)]
    assert (event.kind, event.subject) == ("malformed", "KXBTCD-26NOV2417-T90500")
    assert "open_time" in event.detail
    assert sink.counters["kalshi_rest"]["malformed"] == 1


async def test_error_events_carry_the_server_message(stub: Stub, base_url: str) -> None:
    stub.fail[f"{PREFIX}/series/KXBTC"] = [429]
    stub.series = {"KXBTC": {"ticker": "KXBTC", "fee_type": "quadratic", "fee_multiplier": 1}}
    sink = MemorySink()
    async with fast_client(base_url, sink=sink) as client:
        await client.series("KXBTC")
    (event,) = [e for e in sink.rows["events"] if isinstance(e, EventRow)]
    assert event.detail.startswith("HTTP 429 (stub_failure: scripted 429 (stub)); retry in ")


def test_errors_carry_the_servers_details_and_the_ticker_hint_only_for_ticker_paths() -> None:
    error = {"code": "bad_request", "message": "bad request", "details": "invalid status filter"}
    body = json.dumps({"error": error}).encode()
    err = api_error(400, "/markets", body)
    assert "invalid status filter" in str(err)
    assert err.details == "invalid status filter"
    assert "check the ticker" not in str(err)
    missing = json.dumps({"error": {"code": "not_found", "message": "not found"}}).encode()
    assert "check the ticker" in str(api_error(404, "/markets/KXBTC15M-X/orderbook", missing))
    assert "check the ticker" in str(api_error(404, "/series/KXNOPE", missing))
    other = str(api_error(404, "/exchange/status", missing))
    assert "check the ticker" not in other
    assert "/trade-api/v2" in other
