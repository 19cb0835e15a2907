"""Kalshi REST API v2: wire formats (sans-I/O) and a thin async aiohttp client.

Endpoints and shapes follow reference/kalshi-api.md §4 (OpenAPI 3.13.0, April 2026, plus live
captures through 2026-08): ``/markets`` (cursor pagination), ``/markets/{t}``,
``/markets/{t}/orderbook``, ``/series/{t}``, ``/exchange/status``. Error bodies are
``{"error": {"code", "message", "details"}}`` (``details`` says what was wrong, e.g.
"invalid status filter": it is part of every error's message); Kalshi's 429 carries no
``Retry-After`` (one that does is honoured).

Every request waits for the token bucket (default: Basic tier, ~20 requests/s). 429 and 5xx
answers and connection failures are retried with capped, jittered exponential backoff and
recorded (an ``EventRow`` of kind ``rate_limit`` or ``error`` on stream ``kalshi_rest``, its
``subject`` the path, ``got`` the HTTP status, ``detail`` the server's message and the retry
delay; counters ``requests``, ``rate_limits``, ``errors``, ``malformed``).
Signing with a `Signer` is optional: market data is public, but unsigned answers may come
from Kalshi's CDN cache (~15 s old; the ``Age`` header says how old), signed ones are fresh.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

from arbkit.core.clock import ClockOffset, now_ns, rfc3339_ns
from arbkit.core.errors import ArbkitError, ProtocolError
from arbkit.core.events import EventRow, KalshiRestBookRow
from arbkit.core.retry import Backoff
from arbkit.core.sink import NullSink, Sink
from arbkit.venues.kalshi.auth import Signer
from arbkit.venues.kalshi.limiter import REQUEST_COST, TokenBucket
from arbkit.venues.kalshi.markets import Market, Series, ladder

STREAM: Final = "kalshi_rest"
"""Stream name of REST events, counters and raw responses."""

SERVER_TIME_HEADER: Final = "X-Arbkit-Server-Time-Ns"
"""A ns clock header arbkit's embedded world adds to every response; Kalshi sends none."""

MARKET_STATUS_FILTERS = frozenset({"unopened", "open", "paused", "closed", "settled"})

# ---------------------------------------------------------------------------------------------
# Errors


class KalshiApiError(ArbkitError):
    """Kalshi answered with an error status; carries the server's code and message."""

    hint = ""

    def __init__(
        self, status: int, path: str, code: str = "", message: str = "", details: str = ""
    ):
        self.status = status
        self.path = path
        self.code = code
        self.message = message
        self.details = details
        said = ": ".join(x for x in (code, message) if x)
        if details and details != message:
            said = f"{said} ({details})" if said else details
        self.said = said or "no error body"
        text = f"Kalshi REST {path} answered HTTP {status} ({self.said})"
        hint = self.hint_for(path)
        super().__init__(f"{text}; {hint}" if hint else text)

    def hint_for(self, path: str) -> str:
        """What to do about this error on ``path``."""
        return self.hint


class KalshiAuthError(KalshiApiError):
    hint = (
        "check KALSHI_API_KEY_ID / KALSHI_PRIVATE_KEY_PATH, that the key has not been revoked, "
        "that it belongs to this environment (demo keys only work on demo) and the clock is right"
    )


class KalshiNotFoundError(KalshiApiError):
    hint = "check the ticker (markets are date-coded in US Eastern time) and the environment"

    def hint_for(self, path: str) -> str:
        """The ticker hint only where a path names a market, series or event."""
        if path.startswith(("/markets/", "/series/", "/events/")):
            return self.hint
        return "check the API base URL (it ends in /trade-api/v2) and the environment"


class KalshiRateLimitError(KalshiApiError):
    hint = "requests exceed your Kalshi rate tier: poll fewer markets or less often"


class KalshiServerError(KalshiApiError):
    hint = "Kalshi is failing or in maintenance; retry later (GET /exchange/status tells)"


class KalshiConnectionError(ArbkitError):
    """The REST host could not be reached at all."""


_ERRORS: dict[int, type[KalshiApiError]] = {
    401: KalshiAuthError,
    403: KalshiAuthError,
    404: KalshiNotFoundError,
    429: KalshiRateLimitError,
}


def api_error(status: int, path: str, body: bytes) -> KalshiApiError:
    """The typed error of an error response, with the server's code/message when it sent one."""
    code = message = details = ""
    try:
        err = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        err = None
    if isinstance(err, Mapping):
        code, message, details = (str(err.get(k) or "") for k in ("code", "message", "details"))
    elif body:
        message = body[:200].decode("utf-8", "replace").strip()
    kind = _ERRORS.get(status, KalshiServerError if status >= 500 else KalshiApiError)
    return kind(status, path, code, message, details)


# ---------------------------------------------------------------------------------------------
# Wire formats


@dataclass(frozen=True, slots=True)
class RestResponse:
    """One HTTP exchange: status, body, when the request left and the response arrived."""

    status: int
    body: bytes
    sent_ns: int
    recv_ns: int
    age_s: int | None
    """The ``Age`` header: seconds a CDN had cached this response."""
    date_ns: int | None
    """The ``Date`` header (the server's clock, one-second resolution)."""
    server_ns: int | None = None
    """The server's clock in ns, from `SERVER_TIME_HEADER` (arbkit's embedded world only)."""
    retry_after_s: int | None = None
    """The ``Retry-After`` header in seconds, when a 429 or 503 carries one."""

    def json(self) -> Any:
        return orjson.loads(self.body)


SideLevel = tuple[str, int, int]
"""``(side, price_e4, qty_e2)``; ``side`` is ``yes`` or ``no`` (NO-leg prices), bids only."""


def _side(side: str, levels: Iterable[Any] | None, *, cents: bool = False) -> list[SideLevel]:
    return [(side, p, q) for p, q in ladder(levels, cents=cents)]


def parse_orderbook(payload: Mapping[str, Any]) -> list[SideLevel]:
    """The YES then NO bid ladders of a ``/markets/{t}/orderbook`` body, as sent (ascending).

    Eras: current (≥ OpenAPI 3.10.0, Mar 2026) ``{"orderbook_fp": {"yes_dollars": [["0.11",
    "97.22"]], "no_dollars": [...]}}``; transition (3.6.0, Feb 2026) carries that plus the
    legacy ``orderbook`` (``orderbook_fp`` wins); legacy (≤ 2025) ``{"orderbook": {"yes":
    [[cents, count]], "no": ..., "yes_dollars": [["0.15", count]], ...}}`` where a side may be
    null or absent when empty.
    """
    if not isinstance(payload, Mapping):
        msg = f"orderbook response is a JSON {type(payload).__name__}, expected an object"
        raise ProtocolError(msg)
    fp = payload.get("orderbook_fp")
    if isinstance(fp, Mapping):
        return _side("yes", fp.get("yes_dollars")) + _side("no", fp.get("no_dollars"))
    legacy = payload.get("orderbook")
    if not isinstance(legacy, Mapping):
        msg = "orderbook response has neither 'orderbook_fp' nor 'orderbook'"
        raise ProtocolError(msg)
    levels: list[SideLevel] = []
    for side in ("yes", "no"):
        dollars = legacy.get(f"{side}_dollars")
        if dollars is not None:
            levels += _side(side, dollars)
        else:
            levels += _side(side, legacy.get(side), cents=True)
    return levels


@dataclass(frozen=True, slots=True)
class RestBook:
    """One order-book poll: the response's timing and status, and its levels (empty on error)."""

    market: str
    response: RestResponse
    levels: list[SideLevel]

    def rows(self, poll_id: int, intended_ns: int | None = None) -> list[KalshiRestBookRow]:
        """The ``kalshi_rest_book`` rows of this poll (one ``side == ""`` row if no levels);
        ``intended_ns`` is the poll's scheduled send time."""
        r = self.response
        levels = self.levels or [("", 0, 0)]
        return [
            KalshiRestBookRow(
                poll_id,
                r.sent_ns,
                r.recv_ns,
                r.status,
                self.market,
                side,
                price,
                qty,
                r.age_s,
                intended_ns,
            )
            for side, price, qty in levels
        ]


def orderbook_path(ticker: str) -> str:
    """The path (under the API base) of a market's order book."""
    return f"/markets/{quote(ticker)}/orderbook"


def book_from_response(market: str, response: RestResponse) -> RestBook:
    """Parse a 200 order-book response; other statuses give a book with no levels."""
    levels = parse_orderbook(response.json()) if response.status == 200 else []
    return RestBook(market, response, levels)


@dataclass(frozen=True, slots=True)
class ExchangeStatus:
    """``GET /exchange/status``."""

    exchange_active: bool
    trading_active: bool
    estimated_resume_ns: int | None

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> ExchangeStatus:
        resume = obj.get("exchange_estimated_resume_time")
        return cls(
            bool(obj.get("exchange_active")),
            bool(obj.get("trading_active")),
            rfc3339_ns(resume) if resume else None,
        )


def _header_int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _header_date_ns(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp()) * 1_000_000_000
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Client


class KalshiRest:
    """Async Kalshi REST client: rate-limited, retrying, optionally signed.

    ``base_url`` ends in ``/trade-api/v2`` (signatures cover the full URL path). Use it as an
    async context manager, or call `close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        signer: Signer | None = None,
        limiter: TokenBucket | None = None,
        sink: Sink | None = None,
        retries: int = 4,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self._signer = signer
        self.limiter = limiter or TokenBucket()
        self.sink: Sink = sink or NullSink()
        self.retries = retries
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KalshiRest:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _event(self, kind: str, path: str, detail: str, status: int | None) -> None:
        self.sink.write(EventRow(now_ns(), STREAM, 0, kind, path, detail, None, status))
        self.sink.count(STREAM, "rate_limits" if kind == "rate_limit" else "errors")

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        retries: int | None = None,
    ) -> RestResponse:
        """Send one request (``path`` relative to the base URL), retrying 429/5xx/failures.

        Returns the last response whatever its status once retries are spent; raises
        `KalshiConnectionError` if the host never answered.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        left = self.retries if retries is None else retries
        backoff = Backoff(self._backoff_initial, self._backoff_max, rng=self._rng)
        url = self.base_url + path
        sign_path = self._base_path + path
        while True:
            await self.limiter.acquire(REQUEST_COST)
            headers = self._signer.headers(method, sign_path) if self._signer else None
            sent = now_ns()
            try:
                async with self._session.request(
                    method, url, params=params, headers=headers
                ) as resp:
                    body = await resp.read()
                    recv = now_ns()
                    self.sink.count(STREAM, "requests")
                    response = RestResponse(
                        resp.status,
                        body,
                        sent,
                        recv,
                        _header_int(resp.headers.get("Age")),
                        _header_date_ns(resp.headers.get("Date")),
                        _header_int(resp.headers.get(SERVER_TIME_HEADER)),
                        _header_int(resp.headers.get("Retry-After")),
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if left <= 0:
                    self._event("error", path, reason, None)
                    msg = (
                        f"cannot reach Kalshi REST at {self.base_url} ({reason}); check the "
                        "network and ARBKIT_KALSHI_REST_URL"
                    )
                    raise KalshiConnectionError(msg) from None
                delay = backoff.delay(time.monotonic())
                self._event("error", path, f"{reason}; retry in {delay:.2f}s", None)
            else:
                if response.status != 429 and response.status < 500:
                    return response
                kind = "rate_limit" if response.status == 429 else "error"
                said = api_error(response.status, path, response.body).said
                if left <= 0:
                    detail = f"HTTP {response.status} ({said}); no retries left"
                    self._event(kind, path, detail, response.status)
                    return response
                delay = max(backoff.delay(time.monotonic()), response.retry_after_s or 0.0)
                detail = f"HTTP {response.status} ({said}); retry in {delay:.2f}s"
                self._event(kind, path, detail, response.status)
            left -= 1
            await asyncio.sleep(delay)

    async def get_json(
        self, path: str, params: Mapping[str, str | int] | None = None
    ) -> dict[str, Any]:
        """GET and decode a JSON object; error statuses raise a `KalshiApiError` subclass."""
        response = await self.request("GET", path, params)
        if response.status >= 400:
            raise api_error(response.status, path, response.body)
        try:
            data = response.json()
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            msg = f"Kalshi REST {path} answered HTTP {response.status} without a JSON object"
            raise ProtocolError(msg)
        return data

    async def iter_markets(
        self,
        *,
        series_ticker: str | None = None,
        status: str | None = None,
        event_ticker: str | None = None,
        tickers: Iterable[str] | None = None,
        limit: int = 1000,
    ) -> AsyncIterator[Market]:
        """Every market matching the filters, following the cursor page by page.

        ``status`` is a filter value (``unopened|open|paused|closed|settled``, one per
        request); returned markets carry the response enum (``open`` lists ``active`` ones).
        """
        if status is not None and status not in MARKET_STATUS_FILTERS:
            msg = f"market status filter {status!r}: use one of {sorted(MARKET_STATUS_FILTERS)}"
            raise ValueError(msg)
        filters = {
            "series_ticker": series_ticker,
            "status": status,
            "event_ticker": event_ticker,
            "tickers": ",".join(tickers) if tickers is not None else None,
        }
        params: dict[str, str | int] = {k: v for k, v in filters.items() if v}
        params["limit"] = limit
        seen: set[str] = set()
        while True:
            page = await self.get_json("/markets", params)
            for obj in page.get("markets") or ():
                market = self._market_or_none(obj)
                if market is not None:
                    yield market
            cursor = page.get("cursor")
            if not cursor:
                return
            if cursor in seen:
                msg = f"Kalshi REST /markets repeated cursor {cursor!r}; stopping pagination"
                raise ProtocolError(msg)
            seen.add(cursor)
            params["cursor"] = cursor

    def _market_or_none(self, obj: Any) -> Market | None:
        """A listed market, or None (recorded as ``malformed``) if it lacks what arbkit needs."""
        try:
            return Market.from_api(obj)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            ticker = obj.get("ticker", "") if isinstance(obj, Mapping) else ""
            detail = f"unusable market object: {type(exc).__name__}: {exc}"[:200]
            self.sink.write(EventRow(now_ns(), STREAM, 0, "malformed", ticker, detail, None, None))
            self.sink.count(STREAM, "malformed")
            return None

    async def markets(self, **filters: Any) -> list[Market]:
        """All pages of `iter_markets` (same keyword filters) as one list."""
        return [m async for m in self.iter_markets(**filters)]

    async def market(self, ticker: str) -> Market:
        """``GET /markets/{ticker}``; `KalshiNotFoundError` when unknown."""
        return Market.from_api((await self.get_json(f"/markets/{quote(ticker)}"))["market"])

    async def orderbook_response(
        self, ticker: str, *, depth: int | None = None, retries: int | None = None
    ) -> RestResponse:
        """The raw ``GET /markets/{ticker}/orderbook`` exchange, whatever its status."""
        params = {"depth": depth} if depth is not None else None
        return await self.request("GET", orderbook_path(ticker), params, retries=retries)

    async def orderbook(self, ticker: str, *, depth: int | None = None) -> RestBook:
        """The current book of one market; error statuses raise a `KalshiApiError` subclass."""
        response = await self.orderbook_response(ticker, depth=depth)
        if response.status >= 400:
            raise api_error(response.status, f"/markets/{ticker}/orderbook", response.body)
        return book_from_response(ticker, response)

    async def series(self, ticker: str) -> Series:
        """``GET /series/{ticker}``: fee type and multiplier among others."""
        return Series.from_api((await self.get_json(f"/series/{quote(ticker)}"))["series"])

    async def exchange_status(self, clock: ClockOffset | None = None) -> ExchangeStatus:
        """``GET /exchange/status`` (its body also comes with 5xx during maintenance).

        With ``clock``, also adds a server-time sample. Kalshi's only server time on REST is
        the HTTP ``Date`` header, with one-second resolution (the server truncates), so the
        sample is taken at the middle of its second and is good to about ±0.5 s plus half the
        round trip; WS timestamps (``ts_ms``) are the finer source where available. A ns
        `SERVER_TIME_HEADER` (the embedded world) is used instead when present.
        """
        path = "/exchange/status"
        response = await self.request("GET", path, retries=0)
        if clock is not None:
            if response.server_ns is not None:
                clock.add(response.sent_ns, response.server_ns, response.recv_ns)
            elif response.date_ns is not None:
                clock.add(response.sent_ns, response.date_ns + 500_000_000, response.recv_ns)
        try:
            data = response.json()
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and "exchange_active" in data:
            return ExchangeStatus.from_api(data)
        raise api_error(response.status, path, response.body)
