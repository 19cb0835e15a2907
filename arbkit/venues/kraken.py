"""Kraken spot ``book``: WebSocket v2 (live) and the v1 array format (2021 recordings).

`KrakenFeed` follows the v2 API as documented in 2023-2026 (reference/brti-and-venues.md §2.2;
docs.kraken.com "Book checksum (WebSocket v2)"): subscribe ``book`` with a depth, a
``snapshot`` then ``update`` frames, ``qty`` 0 deletes, truncate to the subscribed depth after
every message, and a CRC32 ``checksum`` on snapshots and updates. Prices and quantities are JSON
*numbers* printed with full precision, and the checksum is computed over their literal digits,
so the frame is parsed with orjson for its structure while the ``price``/``qty`` texts are read
straight from the frame (falling back to a decimal-preserving stdlib decode when the frame is
laid out unexpectedly). A checksum mismatch records a ``checksum`` event and resubscribes the
symbol (unsubscribe + subscribe with a snapshot); updates are ignored until that snapshot.

`KrakenV1Feed` is a separate mapper for the v1 array frames (``wss://ws.kraken.com``, protocol
1.8.x, 2021): ``[channelID, {"as": .., "bs": ..}, "book-1000", pair]`` snapshots, updates with
``a``/``b`` levels ``[price, volume, timestamp(, "r")]`` and the checksum as a decimal string
``c`` (updates only), sometimes split over two dicts in one frame.

Both compute the same checksum: the top 10 asks (ascending) then the top 10 bids (descending),
each level as price then quantity with the ``.`` removed and leading zeros stripped, CRC32.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import orjson

from arbkit.core.book import ASK, BID, BookSide, L2Book, Level
from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError, ProtocolError
from arbkit.core.sink import Sink
from arbkit.venues.spot import (
    PRICE_CACHE_SIZE,
    Change,
    SpotFeed,
    register_feed,
    rfc3339_ns,
    spot,
)

DEPTHS = (10, 25, 100, 500, 1000)
"""Book depths Kraken accepts."""

CHECKSUM_LEVELS = 10

TextLevel = tuple[str, str]
"""(price text, quantity text) exactly as the venue printed them."""

# Compact or ``json.dumps``-style separators; any other layout falls back to the exact decoder.
_LEVEL = re.compile(r'"price": ?([^,}\s]+), ?"qty": ?([^,}\s]+)')
_DECIMAL_JSON = json.JSONDecoder(parse_float=str, parse_int=str)


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def checksum(asks: Iterable[str], bids: Iterable[str]) -> int:
    """Kraken's CRC32 over level fragments (``price digits + qty digits``), asks then bids."""
    return zlib.crc32("".join([*asks, *bids]).encode())


class _Checked:
    """A Kraken book with the checksum fragment of each level kept beside its int values.

    The fragments of each side's top 10 are joined once and reused until a change reaches the
    top 10 of that side: most updates of a deep book land below it.
    """

    __slots__ = ("ask_frag", "ask_top", "bid_frag", "bid_top", "book", "depth")

    def __init__(self, book: L2Book, depth: int) -> None:
        self.book = book
        self.depth = depth
        self.bid_frag: dict[int, str] = {}
        self.ask_frag: dict[int, str] = {}
        self.bid_top: str | None = None
        self.ask_top: str | None = None

    def checksum(self) -> int:
        book = self.book
        if self.ask_top is None:
            af = self.ask_frag
            self.ask_top = "".join([af[p] for p in book.asks.prices(CHECKSUM_LEVELS)])
        if self.bid_top is None:
            bf = self.bid_frag
            self.bid_top = "".join([bf[p] for p in book.bids.prices(CHECKSUM_LEVELS)])
        return zlib.crc32((self.ask_top + self.bid_top).encode())

    def snapshot(self, bids: Sequence[TextLevel], asks: Sequence[TextLevel]) -> None:
        """Replace the book (truncated to depth) with levels given as texts."""
        blv, self.bid_frag = _levels(bids)
        alv, self.ask_frag = _levels(asks)
        self.book.apply_snapshot(blv, alv)
        self.bid_top = self.ask_top = None
        self._truncate([])

    def update(
        self,
        bids: Sequence[TextLevel],
        asks: Sequence[TextLevel],
        prices: dict[str, tuple[int, str]],
    ) -> list[Change]:
        """Apply level changes given as texts, truncate, and return the changes made."""
        changes: list[Change] = []
        book = self.book
        if bids and _apply(book.bids, self.bid_frag, BID, bids, changes, prices):
            self.bid_top = None
        if asks and _apply(book.asks, self.ask_frag, ASK, asks, changes, prices):
            self.ask_top = None
        self._truncate(changes)
        return changes

    def _truncate(self, changes: list[Change]) -> None:
        # depth >= 10, so truncation never reaches the checksummed levels
        depth = self.depth
        for side, name, frags in (
            (self.book.bids, BID, self.bid_frag),
            (self.book.asks, ASK, self.ask_frag),
        ):
            if len(side.sizes) > depth:
                for p in side.truncate(depth):
                    del frags[p]
                    changes.append((name, p, 0))


def _levels(levels: Iterable[TextLevel]) -> tuple[list[Level], dict[int, str]]:
    out: list[Level] = []
    frags: dict[int, str] = {}
    for pt, qt in levels:
        p = spot(pt)
        q = spot(qt)
        if q:
            out.append((p, q))
            frags[p] = _digits(pt) + _digits(qt)
    return out, frags


def _apply(
    side: BookSide,
    frags: dict[int, str],
    name: str,
    levels: Iterable[TextLevel],
    out: list[Change],
    prices: dict[str, tuple[int, str]],
) -> bool:
    """Apply one side's changes; True if any reached the side's top 10 (checksum levels).

    ``prices`` memoises price text -> (price_e8, checksum digits): prices repeat, sizes don't.
    """
    limit = side.price_at(CHECKSUM_LEVELS - 1)
    sign = -1 if side.is_bid else 1
    edge = None if limit is None else limit * sign
    top = edge is None
    for pt, qt in levels:
        known = prices.get(pt)
        if known is None:
            known = prices[pt] = (spot(pt), _digits(pt))
        p = known[0]
        q = spot(qt)
        if q:
            frags[p] = known[1] + qt.replace(".", "").lstrip("0")
            side.set(p, q)
        elif side.set(p, 0):
            del frags[p]
        else:
            continue  # Kraken sends deletes of levels it never published; nothing changed
        out.append((name, p, q))
        if not top and edge is not None:
            top = p * sign <= edge
    return top


class _KrakenBase(SpotFeed):
    """What the v1 and v2 mappers share: checked books and how a frame's levels are applied."""

    venue: ClassVar[str] = "kraken"
    default_silence_timeout: ClassVar[float] = 15.0

    def __init__(
        self,
        endpoint: Endpoint,
        sink: Sink,
        *,
        symbol: str | Sequence[str] | None = None,
        depth: int = 1000,
        **options: Any,
    ) -> None:
        if depth not in DEPTHS:
            msg = f"kraken book depth {depth} is not offered: use one of {DEPTHS}"
            raise ConfigError(msg)
        super().__init__(endpoint, sink, symbol=symbol, **options)
        self.depth = depth
        self.checked = {s: _Checked(b, depth) for s, b in self.books.items()}
        self._text_prices: dict[str, tuple[int, str]] = {}

    def _snapshot(
        self,
        symbol: str,
        bids: Sequence[TextLevel],
        asks: Sequence[TextLevel],
        recv_ns: int,
        exch_ns: int | None,
        expected: int | None,
    ) -> None:
        checked = self.checked[symbol]
        checked.snapshot(bids, asks)
        got = checked.checksum() if expected is not None else None
        ok = None if expected is None else got == expected
        book = checked.book
        self.apply_snapshot(
            symbol, book.bids.top(), book.asks.top(), recv_ns, exch_ns, checksum_ok=ok
        )
        if ok is False:
            self.checksum_failed(symbol, recv_ns, expected or 0, got or 0)

    def _update(
        self,
        symbol: str,
        bids: Sequence[TextLevel],
        asks: Sequence[TextLevel],
        recv_ns: int,
        exch_ns: int | None,
        expected: int | None,
    ) -> None:
        checked = self.checked[symbol]
        prices = self._text_prices
        if len(prices) > PRICE_CACHE_SIZE:
            prices.clear()
        changes = checked.update(bids, asks, prices)
        ok: bool | None = None
        got = 0
        if expected is not None:
            got = checked.checksum()
            ok = got == expected
        self.emit_changes(checked.book, changes, recv_ns, exch_ns, checksum_ok=ok)
        self.touched(checked.book, recv_ns)
        if ok is False:
            self.checksum_failed(symbol, recv_ns, expected or 0, got)


@register_feed
class KrakenFeed(_KrakenBase):
    """Kraken WebSocket v2 ``book`` with CRC32 verification on every frame."""

    ping_interval_ns: ClassVar[int] = 30_000_000_000

    def __init__(
        self,
        endpoint: Endpoint,
        sink: Sink,
        *,
        symbol: str | Sequence[str] | None = None,
        depth: int = 1000,
        **options: Any,
    ) -> None:
        super().__init__(endpoint, sink, symbol=symbol, depth=depth, **options)
        self._req_id = 0
        self._last_ping_ns = 0

    def _request(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._req_id += 1
        msg: dict[str, Any] = {"method": method, "req_id": self._req_id}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def _book_params(self, symbols: list[str], **extra: Any) -> dict[str, Any]:
        return {"channel": "book", "symbol": symbols, "depth": self.depth, **extra}

    def subscribe(self, now_ns: int) -> None:
        self._last_ping_ns = now_ns
        self._request("subscribe", self._book_params(list(self.symbols), snapshot=True))

    def request_snapshot(self, symbol: str, why: str) -> None:
        """Resubscribe the symbol; the snapshot that follows resyncs the book."""
        self._request("unsubscribe", self._book_params([symbol]))
        self._request("subscribe", self._book_params([symbol], snapshot=True))

    def timer(self, now_ns: int) -> None:
        if now_ns - self._last_ping_ns >= self.ping_interval_ns:
            self._last_ping_ns = now_ns
            self._request("ping")

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        channel = msg.get("channel")
        if channel == "book":
            self._book(msg, text, recv_ns)
        elif channel is None and "method" in msg:
            method = msg["method"]
            if msg.get("success") is False:
                self.event("error", "", f"{method}: {msg.get('error')}", recv_ns)
            elif method == "subscribe":
                self.event("subscribed", str(msg.get("result", {}).get("symbol", "")), "", recv_ns)

    def _book(self, msg: dict[str, Any], text: str, recv_ns: int) -> None:
        data: list[dict[str, Any]] = msg["data"]
        is_snapshot = msg["type"] == "snapshot"
        texts = _level_texts(data, text)
        for d, (bids, asks) in zip(data, texts, strict=True):
            symbol = d["symbol"]
            if symbol not in self.books:
                continue
            ts = d.get("timestamp")
            exch_ns = rfc3339_ns(ts) if ts else None
            expected = d.get("checksum")
            if expected is not None:
                expected = int(expected)
            if is_snapshot:
                self._snapshot(symbol, bids, asks, recv_ns, exch_ns, expected)
            elif not self.is_pending(symbol):
                self._update(symbol, bids, asks, recv_ns, exch_ns, expected)


def _level_texts(
    data: list[dict[str, Any]], text: str
) -> list[tuple[list[TextLevel], list[TextLevel]]]:
    """The literal (price, qty) texts of each data entry's bids and asks, in frame order."""
    pairs = _LEVEL.findall(text)
    if len(data) == 1:
        d = data[0]
        nb = len(d.get("bids", ()))
        if len(pairs) == nb + len(d.get("asks", ())):
            if text.find('"bids"') < text.find('"asks"'):
                return [(pairs[:nb], pairs[nb:])]
            na = len(pairs) - nb
            return [(pairs[na:], pairs[:na])]
    elif len(pairs) == sum(len(d.get("bids", ())) + len(d.get("asks", ())) for d in data):
        out = []
        i = 0
        for d in data:
            got: dict[str, list[TextLevel]] = {"bids": [], "asks": []}
            for key, levels in d.items():
                if key in got:
                    got[key] = pairs[i : i + len(levels)]
                    i += len(levels)
            out.append((got["bids"], got["asks"]))
        return out
    exact = _DECIMAL_JSON.decode(text)["data"]
    return [
        (
            [(lv["price"], lv["qty"]) for lv in d.get("bids", ())],
            [(lv["price"], lv["qty"]) for lv in d.get("asks", ())],
        )
        for d in exact
    ]


class KrakenV1Feed(_KrakenBase):
    """Kraken WebSocket v1 ``book`` (array frames, checksum ``c`` on updates)."""

    def subscribe(self, now_ns: int) -> None:
        self.send(
            {
                "event": "subscribe",
                "pair": list(self.symbols),
                "subscription": {"name": "book", "depth": self.depth},
            }
        )

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        if isinstance(msg, dict):
            if msg.get("status") == "error" or msg.get("event") == "error":
                self.event("error", str(msg.get("pair", "")), str(msg.get("errorMessage")), recv_ns)
            elif msg.get("event") == "subscriptionStatus" and msg.get("status") == "subscribed":
                self.event("subscribed", str(msg.get("pair", "")), "", recv_ns)
            return
        name, symbol = msg[-2], msg[-1]
        if not name.startswith("book") or symbol not in self.books:
            return
        parts: list[dict[str, Any]] = msg[1:-2]
        if "as" in parts[0] or "bs" in parts[0]:
            d = parts[0]
            bids, asks = _v1_levels(d.get("bs", ())), _v1_levels(d.get("as", ()))
            self._snapshot(symbol, bids, asks, recv_ns, _v1_time(d, "as", "bs"), None)
            return
        if self.is_pending(symbol):
            return
        bids, asks, expected, exch_ns = [], [], None, None
        for d in parts:
            bids += _v1_levels(d.get("b", ()))
            asks += _v1_levels(d.get("a", ()))
            if "c" in d:
                expected = int(d["c"])
            t = _v1_time(d, "a", "b")
            if t is not None and (exch_ns is None or t > exch_ns):
                exch_ns = t
        self._update(symbol, bids, asks, recv_ns, exch_ns, expected)


def _v1_levels(levels: Iterable[list[str]]) -> list[TextLevel]:
    return [(lv[0], lv[1]) for lv in levels]


def _v1_time(d: dict[str, Any], *keys: str) -> int | None:
    """The latest level timestamp (epoch seconds with µs, as text) of a v1 dict, in ns."""
    stamps = [lv[2] for k in keys for lv in d.get(k, ())]
    if not stamps:
        return None
    whole, _, frac = max(stamps, key=float).partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def parse_rest_book(text: str) -> tuple[list[Level], list[Level], int | None]:
    """A REST ``/0/public/Depth`` reply as (bids, asks, exch_ns of the newest level).

    Shape as captured 2025-11-11: ``{"error": [], "result": {"<pair>": {"asks": [[price,
    volume, ts], ...], "bids": [...]}}}``; a non-empty ``error`` raises `ProtocolError`.
    """
    msg = orjson.loads(text)
    if msg.get("error"):
        err = f"kraken Depth error: {msg['error']}"
        raise ProtocolError(err)
    (book,) = msg["result"].values()
    bids = [(spot(lv[0]), spot(lv[1])) for lv in book["bids"]]
    asks = [(spot(lv[0]), spot(lv[1])) for lv in book["asks"]]
    stamps = [int(lv[2]) for lv in book["bids"] + book["asks"]]
    return bids, asks, max(stamps) * 1_000_000_000 if stamps else None
