"""Shared sans-I/O plumbing of the spot venue feeds (the BRTI constituents).

Every spot venue protocol subclasses `SpotFeed`, which implements the runner's `FeedProtocol`
(`arbkit.venues.runner`) and everything the venues have in common: one `L2Book` per symbol,
`SpotBookRow`s for snapshots and changes, `EventRow`s for gaps, checksum failures, crossed and
stale books, resyncs and malformed frames, the book ``valid`` flag (False until a snapshot,
and after a gap or checksum failure until the resync's snapshot arrives), staleness, resync
escalation to a reconnect, and the outgoing-frame queue. A venue module only parses its frames
and says how it subscribes and resyncs.

A subclass sets the class attribute ``venue``, registers itself with `register_feed`, and
implements `subscribe` (queue subscribe frames on a new connection) and `handle` (one received
frame). In `handle` it calls `apply_snapshot` / `apply_changes` (or, when it must look at the
book before the rows are written, mutates the book itself and then calls `emit_changes` and
`touched`), `gap` / `checksum_failed` when integrity breaks, and `event` for anything else.
Resync defaults to reconnecting; venues that can resubscribe override `request_snapshot`.

Venues that need a REST snapshot (Bitstamp diffs) queue an `HttpRequest` with `request_http`;
whoever drives the protocol takes them with `take_http`, performs the GET and hands the reply
to `on_http_response` (sans-I/O, like the WebSocket frames).

`venue_urls` builds each venue's WebSocket URL and REST snapshot URL from a configured
`Endpoint` (the contract the embedded world serves), and `make_feed` builds a venue's feed by
name.
"""

from __future__ import annotations

import importlib
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from json import JSONDecodeError
from typing import Any, ClassVar, TypeVar

import orjson

from arbkit.core.book import ASK, BID, BookView, L2Book, Level
from arbkit.core.config import VENUES, Endpoint
from arbkit.core.errors import ConfigError, ProtocolError
from arbkit.core.events import EventRow, SpotBookRow
from arbkit.core.fixed import SPOT_DIGITS, parse_fixed
from arbkit.core.sink import Sink

PRICE_CACHE_SIZE = 50_000
"""Entries a feed's price-text memo may hold before it is cleared (bounded memory)."""

Change = tuple[str, int, int]
"""One level change: (``"bid"`` | ``"ask"``, price_e8, absolute size_e8; 0 deletes)."""

_COUNTERS = {
    "gap": "gaps",
    "resync": "resyncs",
    "checksum": "checksum_failures",
    "malformed": "malformed",
    "crossed": "crossed",
    "stale": "stale",
    "error": "errors",
    "duplicate": "duplicates",
    "dropped": "dropped",
    "divergence": "divergences",
}
"""Event kinds a feed writes -> the stream counter each increments (session.json)."""


SPOT_SCALES: tuple[int, ...] = tuple(10 ** (SPOT_DIGITS - n) for n in range(SPOT_DIGITS + 1))
"""The factor that scales an int of ``n`` fractional digits to ``*_e8``, by ``n``."""


def spot(text: str) -> int:
    """A venue decimal string as an exact ``*_e8`` int (see `arbkit.core.fixed`).

    The hot path of every feed, so the common case (at most 8 decimals) is one partition, one
    ``int`` and one multiplication (hot loops inline exactly this); longer fractions go through
    `parse_fixed`, which rejects what it cannot represent exactly. ``int`` itself rejects
    exponents, stray signs and a second ``.``.
    """
    whole, _, frac = text.partition(".")
    if len(frac) <= SPOT_DIGITS:
        return int(whole + frac) * SPOT_SCALES[len(frac)]
    return int(parse_fixed(text, SPOT_DIGITS))


# --- endpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VenueSpec:
    """How a venue's URLs are formed from its configured `Endpoint` and a symbol.

    ``symbol`` is the venue's BTC/USD symbol as its WebSocket spells it; ``ws_suffix`` and
    ``rest_path`` map that symbol (and a REST depth limit) to what is appended to the
    configured ws URL and REST base.
    """

    symbol: str
    ws_suffix: Callable[[str], str]
    rest_path: Callable[[str, int], str]


def _none(symbol: str) -> str:
    return ""


VENUE_SPECS: dict[str, VenueSpec] = {
    "coinbase": VenueSpec(
        "BTC-USD", _none, lambda s, n: f"/market/product_book?product_id={s}&limit={n}"
    ),
    "kraken": VenueSpec(
        "BTC/USD",
        _none,
        lambda s, n: f"/Depth?pair={s.replace('/', '').replace('BTC', 'XBT')}&count=500",
    ),
    "bitstamp": VenueSpec("btcusd", _none, lambda s, n: f"/order_book/{s}/"),
    "gemini": VenueSpec(
        "BTCUSD",
        lambda s: f"/{s}?heartbeat=true",
        lambda s, n: f"/book/{s.lower()}?limit_bids=0&limit_asks=0",
    ),
    "cryptocom": VenueSpec(
        "BTC_USD", _none, lambda s, n: f"/get-book?instrument_name={s}&depth=50"
    ),
    "bullish": VenueSpec("BTCUSDC", _none, lambda s, n: f"/markets/{s}/orderbook/hybrid"),
    "lmax": VenueSpec("btc-usd", _none, lambda s, n: f"/orderbook/{s}"),
    "paxos": VenueSpec("BTCUSD", lambda s: f"/{s}", lambda s, n: f"/markets/{s}/order-book"),
}


@dataclass(frozen=True)
class VenueUrls:
    """The WebSocket URL a feed connects to and the REST URL of its book snapshot."""

    ws: str
    rest: str


def venue_spec(venue: str) -> VenueSpec:
    try:
        return VENUE_SPECS[venue]
    except KeyError:
        msg = f"unknown spot venue {venue!r}: use one of {', '.join(VENUES)}"
        raise ConfigError(msg) from None


def venue_urls(
    venue: str, endpoint: Endpoint, symbol: str | None = None, *, limit: int = 1000
) -> VenueUrls:
    """The URLs a client of ``venue`` uses, given the configured endpoint (see `VENUE_SPECS`).

    ``limit`` is the REST depth asked for where the venue takes one (Coinbase).
    """
    spec = venue_spec(venue)
    sym = symbol or spec.symbol
    suffix = spec.ws_suffix(sym)
    return VenueUrls(
        ws=endpoint.ws.rstrip("/") + suffix if suffix else endpoint.ws,
        rest=endpoint.rest.rstrip("/") + spec.rest_path(sym, limit),
    )


# --- HTTP requests a protocol asks its driver to make ----------------------------------------


RESYNC_ESCALATE_AFTER = 3
RESYNC_ESCALATE_WINDOW_NS = 60 * 10**9
"""A symbol resynced this many times within the window is resynced by reconnecting instead."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A GET the protocol wants made (e.g. a REST book snapshot to align diffs to)."""

    url: str
    symbol: str
    conn_id: int
    purpose: str = "snapshot"


# --- the base protocol ------------------------------------------------------------------------


class SpotFeed:
    """Base of every spot venue protocol: books, rows, events, validity, staleness, resync.

    Construct with the venue's configured `Endpoint`, the `Sink` rows go to, and the symbol(s)
    in the venue's WebSocket spelling (default: its BTC/USD symbol). ``stale_after`` is how
    many seconds without a book change flag a book stale (10 s, the BRTI retrieval lag
    threshold); ``resync_timeout`` how long a requested snapshot may take before the feed
    reconnects (None: the venue's default; ``math.inf``: never).
    """

    venue: ClassVar[str] = ""
    default_silence_timeout: ClassVar[float] = 30.0
    default_resync_timeout: ClassVar[float] = 15.0
    resync_on_unreadable: ClassVar[bool] = False
    """True for delta feeds with neither sequence numbers nor checksums (Paxos, Gemini v2): an
    unreadable frame may have been an update, and nothing else would reveal its loss."""

    def __init__(
        self,
        endpoint: Endpoint,
        sink: Sink,
        *,
        symbol: str | Sequence[str] | None = None,
        stale_after: float = 10.0,
        silence_timeout: float | None = None,
        resync_timeout: float | None = None,
    ) -> None:
        spec = venue_spec(self.venue)
        if symbol is None:
            symbols: tuple[str, ...] = (spec.symbol,)
        elif isinstance(symbol, str):
            symbols = (symbol,)
        else:
            symbols = tuple(symbol)
        if not symbols:
            msg = f"{self.venue}: give at least one symbol (e.g. {spec.symbol!r})"
            raise ConfigError(msg)
        self.endpoint = endpoint
        self.sink = sink
        self.stream = self.venue
        self.symbols = symbols
        self.urls = venue_urls(self.venue, endpoint, symbols[0])
        self.silence_timeout = (
            self.default_silence_timeout if silence_timeout is None else silence_timeout
        )
        self.stale_after_ns = int(stale_after * 1e9)
        timeout = self.default_resync_timeout if resync_timeout is None else resync_timeout
        self.resync_timeout_ns = None if math.isinf(timeout) else int(timeout * 1e9)
        self.reconnect_reason: str | None = None
        self.conn_id = 0
        self.books: dict[str, L2Book] = {s: L2Book(self.venue, s, valid=False) for s in symbols}
        self._out: list[str] = []
        self._http: list[HttpRequest] = []
        self._pending: dict[str, int] = {}
        """symbol -> time a snapshot was asked for (connect or resync) and not yet applied."""
        self._crossed: set[str] = set()
        self._resyncing: set[str] = set()
        self._recent_resyncs: dict[str, deque[int]] = {}
        self._prices: dict[str, int] = {}

    # -- FeedProtocol ---------------------------------------------------------------------

    def url(self) -> str:
        return self.urls.ws

    def headers(self) -> dict[str, str]:
        return {}

    def on_open(self, conn_id: int, now_ns: int) -> None:
        self.conn_id = conn_id
        for sym, book in self.books.items():
            book.valid = False
            self._pending[sym] = now_ns
        self.subscribe(now_ns)

    def on_message(self, text: str, recv_ns: int) -> None:
        try:
            self.handle(text, recv_ns)
        except JSONDecodeError as exc:
            self.event("malformed", "", f"not JSON: {exc}; {text[:200]!r}", recv_ns)
            if self.resync_on_unreadable:
                for sym in self.symbols:
                    self.resync(sym, recv_ns, "unreadable frame")
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, ProtocolError) as exc:
            # The frame parsed but did not have the shape we know: a book may be half-applied,
            # so every book on the connection is resynced.
            self.event("malformed", "", f"{type(exc).__name__}: {exc}; {text[:200]!r}", recv_ns)
            for sym in self.symbols:
                self.resync(sym, recv_ns, "malformed frame")

    def on_timer(self, now_ns: int) -> None:
        stale_ns = self.stale_after_ns
        for sym, book in self.books.items():
            if book.valid and not book.stale and now_ns - book.updated_ns > stale_ns:
                book.stale = True
                age = (now_ns - book.updated_ns) / 1e9
                self.event("stale", sym, f"no book update for {age:.1f} s", now_ns)
        timeout = self.resync_timeout_ns
        if timeout is not None and not self.reconnect_reason:
            for sym, since in self._pending.items():
                if now_ns - since > timeout:
                    self.reconnect_reason = (
                        f"no {sym} snapshot within {timeout / 1e9:g} s; reconnecting"
                    )
                    break
        self.timer(now_ns)

    def on_close(self, now_ns: int, reason: str) -> None:
        for book in self.books.values():
            book.valid = False
        self._pending.clear()
        self._http.clear()

    def on_connect_error(self, now_ns: int, status: int | None, reason: str) -> None:
        """Nothing to do: the runner records the failure and backs off."""

    def take_outgoing(self) -> list[str]:
        out, self._out = self._out, []
        return out

    def delivered(self) -> bool:
        """True once this connection has a snapshot applied (the runner's `Delivering`)."""
        return any(book.valid for book in self.books.values())

    def view(self, symbol: str | None = None, depth: int | None = None) -> BookView:
        """The `BookView` of ``symbol``'s book (default: the first symbol) for the index; its
        ``valid`` is False unless the feed vouches for the book and it is not crossed."""
        return self.books[symbol or self.symbols[0]].view(depth)

    # -- sans-I/O HTTP --------------------------------------------------------------------

    def take_http(self) -> list[HttpRequest]:
        """GETs the protocol wants made; the driver calls `on_http_response` with each reply."""
        out, self._http = self._http, []
        return out

    def on_http_response(self, request: HttpRequest, status: int, text: str, recv_ns: int) -> None:
        """A reply to one of `take_http`'s requests; venues that ask for HTTP override this."""
        msg = f"{self.venue} made no HTTP request"
        raise ProtocolError(msg)

    def request_http(self, request: HttpRequest) -> None:
        self._http.append(request)

    # -- for subclasses -------------------------------------------------------------------

    def subscribe(self, now_ns: int) -> None:
        """Queue the frames that subscribe every symbol on a new connection."""
        raise NotImplementedError

    def handle(self, text: str, recv_ns: int) -> None:
        """Parse one received frame and apply it (raise on a shape it does not know)."""
        raise NotImplementedError

    def timer(self, now_ns: int) -> None:
        """About once a second: client heartbeats and the like (default: nothing)."""

    def request_snapshot(self, symbol: str, why: str) -> None:
        """Ask the venue for a fresh snapshot of ``symbol``; by default, reconnect."""
        if not self.reconnect_reason:
            self.reconnect_reason = f"resync {symbol}: {why}"

    def send(self, message: object) -> None:
        """Queue one frame (a JSON-able object, or text as is)."""
        self._out.append(message if isinstance(message, str) else orjson.dumps(message).decode())

    def event(
        self,
        kind: str,
        subject: str,
        detail: str,
        t_ns: int,
        expected: int | None = None,
        got: int | None = None,
    ) -> None:
        """Write an `EventRow` for this stream and bump its counter."""
        self.sink.write(
            EventRow(t_ns, self.stream, self.conn_id, kind, subject, detail, expected, got)
        )
        counter = _COUNTERS.get(kind)
        if counter:
            self.sink.count(self.stream, counter)

    def price_cache(self) -> dict[str, int]:
        """A bounded price-text -> ``price_e8`` memo for hot loops (prices repeat far more
        than sizes): ``p = cache.get(t)``, and on a miss ``p = cache[t] = spot(t)``."""
        if len(self._prices) > PRICE_CACHE_SIZE:
            self._prices.clear()
        return self._prices

    def is_pending(self, symbol: str) -> bool:
        """True while a snapshot for ``symbol`` has been asked for and not applied."""
        return symbol in self._pending

    def apply_snapshot(
        self,
        symbol: str,
        bids: Iterable[Level],
        asks: Iterable[Level],
        recv_ns: int,
        exch_ns: int | None,
        *,
        seq: int | None = None,
        checksum_ok: bool | None = None,
    ) -> L2Book:
        """Replace ``symbol``'s book, write its snapshot rows, and vouch for it again.

        A snapshot with both sides empty is written as one row with ``side == ""`` so the
        reset is recorded.
        """
        book = self.books[symbol]
        book.apply_snapshot(bids, asks)
        write = self.sink.write
        venue, conn_id = self.venue, self.conn_id
        for side, levels in ((BID, book.bids.top()), (ASK, book.asks.top())):
            for p, s in levels:
                write(
                    SpotBookRow(
                        recv_ns, exch_ns, venue, symbol, side, p, s, True, seq, checksum_ok, conn_id
                    )
                )
        if not book.bids and not book.asks:
            write(SpotBookRow(recv_ns, exch_ns, venue, symbol, "", 0, 0, True, seq, None, conn_id))
        self._pending.pop(symbol, None)
        book.valid = True
        self.touched(book, recv_ns)
        if symbol in self._resyncing:
            self._resyncing.discard(symbol)
            self.event("resync", symbol, "snapshot applied", recv_ns)
        return book

    def apply_changes(
        self,
        book: L2Book,
        changes: Sequence[Change],
        recv_ns: int,
        exch_ns: int | None,
        *,
        seq: int | None = None,
        checksum_ok: bool | None = None,
    ) -> None:
        """Apply absolute level changes to ``book`` and write one row per change."""
        bids, asks = book.bids, book.asks
        for side, p, s in changes:
            (bids if side == BID else asks).set(p, s)
        self.emit_changes(book, changes, recv_ns, exch_ns, seq=seq, checksum_ok=checksum_ok)
        self.touched(book, recv_ns)

    def emit_changes(
        self,
        book: L2Book,
        changes: Iterable[Change],
        recv_ns: int,
        exch_ns: int | None,
        *,
        seq: int | None = None,
        checksum_ok: bool | None = None,
    ) -> None:
        """Write rows for changes the venue already applied to ``book`` itself."""
        write = self.sink.write
        venue, symbol, conn_id = self.venue, book.symbol, self.conn_id
        for side, p, s in changes:
            write(
                SpotBookRow(
                    recv_ns, exch_ns, venue, symbol, side, p, s, False, seq, checksum_ok, conn_id
                )
            )

    def touched(self, book: L2Book, recv_ns: int) -> None:
        """Bookkeeping after a book changed: its time, staleness and crossed flag."""
        book.updated_ns = recv_ns
        book.stale = False
        if book.crossed:
            if book.symbol not in self._crossed:
                self._crossed.add(book.symbol)
                self.event(
                    "crossed",
                    book.symbol,
                    f"best bid {book.best_bid} >= best ask {book.best_ask} (e8)",
                    recv_ns,
                )
        elif self._crossed:
            self._crossed.discard(book.symbol)

    def resync(self, symbol: str, t_ns: int, why: str) -> None:
        """Stop vouching for ``symbol``'s book and ask for a fresh snapshot (once)."""
        book = self.books[symbol]
        book.valid = False
        if symbol in self._resyncing:
            return
        self._resyncing.add(symbol)
        self._pending[symbol] = t_ns
        self.event("resync", symbol, f"requested: {why}", t_ns)
        recent = self._recent_resyncs.setdefault(symbol, deque(maxlen=RESYNC_ESCALATE_AFTER))
        recent.append(t_ns)
        if len(recent) == recent.maxlen and t_ns - recent[0] < RESYNC_ESCALATE_WINDOW_NS:
            # fresh snapshots keep failing: start over on a new connection (with backoff)
            recent.clear()
            self.reconnect_reason = (
                f"{symbol}: {RESYNC_ESCALATE_AFTER} resyncs within "
                f"{RESYNC_ESCALATE_WINDOW_NS // 10**9} s; reconnecting"
            )
            return
        self.request_snapshot(symbol, why)

    def gap(
        self, symbol: str, t_ns: int, expected: int, got: int, *, detail: str = "sequence gap"
    ) -> None:
        """Record a sequence gap on ``symbol`` (``got`` arrived where ``expected`` was due) and
        resync it."""
        self.event("gap", symbol, detail, t_ns, expected, got)
        self.resync(symbol, t_ns, f"gap: expected {expected}, got {got}")

    def checksum_failed(self, symbol: str, t_ns: int, expected: int, got: int) -> None:
        """Record a checksum mismatch (venue sent ``expected``, the book gives ``got``) and
        resync the book."""
        self.event("checksum", symbol, "book checksum mismatch", t_ns, expected, got)
        self.resync(symbol, t_ns, "checksum mismatch")


# --- registry ---------------------------------------------------------------------------------

_FEEDS: dict[str, type[SpotFeed]] = {}

F = TypeVar("F", bound=type[SpotFeed])


def register_feed(cls: F) -> F:
    """Class decorator: make ``cls`` the feed `make_feed` builds for ``cls.venue``."""
    _FEEDS[cls.venue] = cls
    return cls


def make_feed(
    venue: str,
    endpoint: Endpoint,
    sink: Sink,
    *,
    symbol: str | Sequence[str] | None = None,
    **options: Any,
) -> SpotFeed:
    """Build ``venue``'s feed protocol (module ``arbkit.venues.<venue>``, imported on demand).

    ``options`` go to the venue's constructor (e.g. ``depth=`` for Kraken, ``mode=`` for
    Bitstamp).
    """
    venue_spec(venue)
    if venue not in _FEEDS:
        try:
            importlib.import_module(f"arbkit.venues.{venue}")
        except ModuleNotFoundError as exc:
            if exc.name != f"arbkit.venues.{venue}":
                raise
    try:
        cls = _FEEDS[venue]
    except KeyError:
        msg = f"no feed implemented for {venue!r} yet; implemented: {', '.join(sorted(_FEEDS))}"
        raise ConfigError(msg) from None
    return cls(endpoint, sink, symbol=symbol, **options)
