"""REST v2 routes of the Kalshi world: markets, orderbook, series, fee changes, exchange status.

Shapes per reference/kalshi-api.md §4 (errors §4.5 as ``{"error":{code,message,details}}``).
Every response carries the world clock in ``X-Arbkit-Server-Time-Ns``; unsigned reads go
through the `CdnCache` once the world is ready (a response built before then is never
stored); faults ``slow``, ``http429``, ``http5xx`` and `fail_rest` apply to every request.
Query parameters that are not integers, negative or out of range answer 400, never 500.
`KalshiRest` is mixed into `KalshiSim`, which supplies the state declared here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum

import orjson
from aiohttp import web

from arbkit.core import clock
from arbkit.sim.faults import Faults
from arbkit.sim.kalshi.auth import KeyRing, Verdict
from arbkit.sim.kalshi.cdn import CdnCache
from arbkit.sim.kalshi.exchange import Exchange
from arbkit.sim.kalshi.markets import FeeChange, maintenance_end_ns
from arbkit.sim.kalshi.wire import Json, Wire, iso

REST_PREFIX = "/trade-api/v2"
TIME_HEADER = "X-Arbkit-Server-Time-Ns"
"""Every REST response carries the world's clock in ns (``Date`` only has whole seconds)."""
MAX_LIMIT = 1000

STATUS_FILTERS: dict[str, frozenset[str]] = {
    "unopened": frozenset({"initialized"}),
    "open": frozenset({"active"}),
    "closed": frozenset({"closed", "determined"}),
    "settled": frozenset({"finalized"}),
}
"""``GET /markets?status=`` filter -> the market statuses it lists (reference §4.1)."""


class RestError(StrEnum):
    """The ``error.code`` values the world answers with."""

    INVALID_PARAMETERS = "invalid_parameters"
    NOT_FOUND = "not_found"
    MARKET_NOT_FOUND = "market_not_found"
    AUTHENTICATION = "authentication_error"
    TOO_MANY_REQUESTS = "too_many_requests"
    INTERNAL = "internal_server_error"


class BadQuery(Exception):
    """A query parameter the world refuses with 400."""


def error_body(code: RestError, message: str) -> Json:
    return {"error": {"code": code, "message": message, "details": "", "service": "sim"}}


def rest_error(status: int, code: RestError, message: str) -> web.Response:
    return web.json_response(
        error_body(code, message), status=status, dumps=lambda o: orjson.dumps(o).decode()
    )


def int_param(q: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter in ``[lo, hi]`` (absent: ``default``), else `BadQuery`."""
    text = q.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadQuery(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise BadQuery(f"{name} must be {lo}..{hi}")
    return value


def _offset(cursor: str) -> int:
    """The offset a ``/markets`` cursor encodes (the world's cursors: base64 of an offset)."""
    try:
        offset = int(base64.urlsafe_b64decode(cursor).decode())
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadQuery("invalid cursor") from None
    if offset < 0:
        raise BadQuery("invalid cursor")
    return offset


class KalshiRest:
    """The REST half of the Kalshi world (mixed into `KalshiSim`)."""

    exchange: Exchange
    wire: Wire
    faults: Faults
    keys: KeyRing
    counters: dict[str, int]
    now_ns: Callable[[], int]
    cdn: CdnCache
    ready: bool
    maintenance: bool
    fee_changes: Sequence[FeeChange]
    _rng: random.Random
    _rest_failures: list[int]

    def rest_routes(self) -> list[web.RouteDef]:
        p = REST_PREFIX
        return [
            web.get(f"{p}/markets", self._markets),
            web.get(f"{p}/markets/{{ticker}}", self._market),
            web.get(f"{p}/markets/{{ticker}}/orderbook", self._orderbook),
            web.get(f"{p}/series/fee_changes", self._fee_changes),
            web.get(f"{p}/series/{{series_ticker}}", self._series),
            web.get(f"{p}/exchange/status", self._exchange_status),
            web.route("*", f"{p}/{{tail:.*}}", self._not_found),
        ]

    async def _rest(
        self, request: web.Request, body: Callable[[], tuple[int, Json]], cacheable: bool = True
    ) -> web.Response:
        """Common REST path: auth, faults, CDN-like cache for unsigned reads, clock header."""
        self.counters["rest_requests"] += 1
        verdict = self.keys.verify(
            request.headers, request.method, request.path, clock.now_ns() // 1_000_000
        )
        if verdict is Verdict.BAD:
            self.counters["auth_failures"] += 1
            return self._stamp(rest_error(401, RestError.AUTHENTICATION, "invalid signature"))
        slow = self.faults.get("slow")
        if slow > 0:
            await asyncio.sleep(slow)
        status = self._rest_failures.pop(0) if self._rest_failures else 0
        if not status and self.faults.chance("http429", self._rng):
            status = 429
        if not status and self.faults.chance("http5xx", self._rng):
            status = 503
        if status == 429:
            return self._stamp(rest_error(429, RestError.TOO_MANY_REQUESTS, "too many requests"))
        if status:
            return self._stamp(rest_error(status, RestError.INTERNAL, "internal server error"))
        use_cache = cacheable and verdict is Verdict.ABSENT and self.cdn.enabled and self.ready
        key = request.path_qs
        hit = self.cdn.get(key) if use_cache else None
        if hit is not None:
            code, data, headers = hit
        else:
            try:
                code, obj = body()
            except BadQuery as exc:
                code, obj = 400, error_body(RestError.INVALID_PARAMETERS, str(exc))
            data = orjson.dumps(obj)
            headers = {}
            if use_cache:
                headers = self.cdn.put(key, code, data) if code == 200 else self.cdn.control()
        resp = web.Response(
            body=data, status=code, content_type="application/json", headers=headers
        )
        return self._stamp(resp)

    def _stamp(self, resp: web.Response) -> web.Response:
        resp.headers[TIME_HEADER] = str(self.now_ns())
        return resp

    async def _markets(self, request: web.Request) -> web.Response:
        return await self._rest(request, lambda: self._markets_body(request.query))

    def _markets_body(self, q: Mapping[str, str]) -> tuple[int, Json]:
        limit = int_param(q, "limit", 100, 0, MAX_LIMIT)
        offset = _offset(q["cursor"]) if q.get("cursor") else 0
        status = q.get("status")
        if status is not None and status not in STATUS_FILTERS:
            raise BadQuery("invalid status")
        series = q.get("series_ticker")
        events = set(q["event_ticker"].split(",")) if q.get("event_ticker") else None
        tickers = set(q["tickers"].split(",")) if q.get("tickers") else None
        ms = [
            m
            for m in sorted(self.exchange.markets.values(), key=lambda m: (m.close_ns, m.ticker))
            if (series is None or m.series == series)
            and (status is None or m.status in STATUS_FILTERS[status])
            and (events is None or m.event_ticker in events)
            and (tickers is None or m.ticker in tickers)
        ]
        page = ms[offset : offset + (limit or 100)]
        end = offset + len(page)
        cursor = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(ms) else ""
        ex = self.exchange
        return 200, {
            "markets": [self.wire.market(m, ex.top(m.ticker)) for m in page],
            "cursor": cursor,
        }

    async def _market(self, request: web.Request) -> web.Response:
        ticker = request.match_info["ticker"]

        def body() -> tuple[int, Json]:
            m = self.exchange.markets.get(ticker)
            if m is None:
                return 404, _not_found_body(RestError.MARKET_NOT_FOUND, "market not found")
            return 200, {"market": self.wire.market(m, self.exchange.top(ticker))}

        return await self._rest(request, body)

    async def _orderbook(self, request: web.Request) -> web.Response:
        ticker = request.match_info["ticker"]

        def body() -> tuple[int, Json]:
            book = self.exchange.books.get(ticker)
            if book is None:
                return 404, _not_found_body(RestError.MARKET_NOT_FOUND, "market not found")
            # depth 0 = every level (reference §4.3); absurdly deep asks get every level too
            depth = int_param(request.query, "depth", 0, 0, 2**63 - 1)
            return 200, self.wire.orderbook(book, depth)

        return await self._rest(request, body)

    async def _series(self, request: web.Request) -> web.Response:
        ticker = request.match_info["series_ticker"]

        def body() -> tuple[int, Json]:
            out = self.wire.series(ticker)
            if out is None:
                return 404, _not_found_body(RestError.NOT_FOUND, "series not found")
            return 200, out

        return await self._rest(request, body)

    async def _fee_changes(self, request: web.Request) -> web.Response:
        # UNVERIFIED (reference §4.4 names the endpoint only): shape and the ``series_ticker``
        # / ``show_historical`` filters as third-party clients read it,
        # {"series_fee_change_arr":[{id, series_ticker, fee_type, fee_multiplier, scheduled_ts}]}
        series = request.query.get("series_ticker")
        historical = request.query.get("show_historical", "false") == "true"

        def body() -> tuple[int, Json]:
            now = self.now_ns()
            changes = [
                {
                    "id": c.id,
                    "series_ticker": c.series_ticker,
                    "fee_type": c.fee_type,
                    "fee_multiplier": c.fee_multiplier,
                    "scheduled_ts": iso(c.scheduled_ns),
                }
                for c in sorted(self.fee_changes, key=lambda c: c.scheduled_ns)
                if (series is None or c.series_ticker == series)
                and (historical or c.scheduled_ns > now)
            ]
            return 200, {"series_fee_change_arr": changes}

        return await self._rest(request, body)

    async def _exchange_status(self, request: web.Request) -> web.Response:
        resume = maintenance_end_ns(self.now_ns()) if self.maintenance else None
        body = {
            "exchange_active": True,
            "trading_active": resume is None,
            "exchange_estimated_resume_time": None if resume is None else iso(resume),
        }
        return await self._rest(request, lambda: (200, body), cacheable=False)

    async def _not_found(self, request: web.Request) -> web.Response:
        return await self._rest(
            request, lambda: (404, _not_found_body(RestError.NOT_FOUND, "not found")), False
        )


def _not_found_body(code: RestError, message: str) -> Json:
    return {"error": {"code": code, "message": message, "details": ""}}
