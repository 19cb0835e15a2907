"""Kraken spot ``book``: WebSocket v2 (live) and the v1 array format (2021 recordings).

`KrakenFeed` follows the v2 API as documented in 2023-2026 (reference/brti-and-venues.md §2.2;
docs.kraken.com "Book checksum (WebSocket v2)"): subscribe ``book`` with a depth, a
``snapshot`` then ``update`` frames, ``qty`` 0 deletes, truncate to the subscribed depth after
every message, and a CRC32 ``checksum`` on snapshots and updates. Prices and quantities are JSON
*numbers* printed with full precision, and the checksum is computed over their literal digits,
so book frames are decoded by msgspec into typed structs whose ``price``/``qty`` stay
``msgspec.Raw`` (the exact text, whatever the layout or key order); other frames are read with
orjson. A checksum mismatch records a ``checksum`` event and resubscribes the symbol
(unsubscribe + subscribe with a snapshot); updates are ignored until that snapshot.

`KrakenV1Feed` is a separate mapper for the v1 array frames (``wss://ws.kraken.com``, protocol
1.8.x, 2021): ``[channelID, {"as": .., "bs": ..}, "book-1000", pair]`` snapshots, updates with
``a``/``b`` levels ``[price, volume, timestamp(, "r")]`` and the checksum as a decimal string
``c`` (updates only), sometimes split over two dicts in one frame.

Both compute the same checksum: the top 10 asks (ascending) then the top 10 bids (descending),
each level as price then quantity with the ``.`` removed and leading zeros stripped, CRC32.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import msgspec
import orjson

from arbkit.core.book import ASK, BID, BookSide, L2Book, Level
from arbkit.core.clock import rfc3339_ns
from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError, ProtocolError
from arbkit.core.fixed import SPOT_DIGITS
from arbkit.core.sink import Sink
from arbkit.venues.spot import (
    PRICE_CACHE_SIZE,
    SPOT_SCALES,
    Change,
    SpotFeed,
    register_feed,
    spot,
)

DEPTHS = (10, 25, 100, 500, 1000)
"""Book depths Kraken accepts."""

CHECKSUM_LEVELS = 10


class _Level(msgspec.Struct, gc=False):
    """A level as the venue printed it: ``Raw`` keeps each number's literal text (the checksum
    is computed over it); v1 levels are built from their strings with `_text_level`."""

    price: msgspec.Raw
    qty: msgspec.Raw


def _text_level(price: str, qty: str) -> _Level:
    return _Level(msgspec.Raw(price.encode()), msgspec.Raw(qty.encode()))


class _BookData(msgspec.Struct, gc=False):
    symbol: str
    bids: list[_Level] = []
    asks: list[_Level] = []
    checksum: int | None = None
    timestamp: str | None = None


class _BookFrame(msgspec.Struct, gc=False):
    """A v2 ``book`` frame as typed structs (msgspec: no dicts, numbers left as text)."""

    channel: str
    type: str
    data: list[_BookData]


_decode_book = msgspec.json.Decoder(_BookFrame).decode


def _number(text: bytes) -> tuple[int, bytes]:
    """A price or quantity text as (``*_e8`` int, checksum digits: ``.`` removed, leading
    zeros stripped)."""
    whole, _, frac = text.partition(b".")
    digits = whole + frac
    if len(frac) <= SPOT_DIGITS:
        return int(digits) * SPOT_SCALES[len(frac)], digits.lstrip(b"0")
    return spot(text.decode()), digits.lstrip(b"0")


def checksum(asks: Iterable[str], bids: Iterable[str]) -> int:
    """Kraken's CRC32 over level fragments (``price digits + qty digits``), asks then bids."""
    return zlib.crc32("".join([*asks, *bids]).encode())


_ANY = 1 << 128
"""A sort key beyond any price: "every change reaches the top 10" while a side has fewer."""


class _Checked:
    """A Kraken book with the checksum fragment of each level kept beside its int values.

    Fragments are keyed by the book side's sort key (the price; negated for bids), so a side's
    top-10 string is one C-level join over `BookSide.keys`. Each side's string is rebuilt only
    when a change reaches its top 10 (most updates of a deep book land below), and the CRC of
    the asks (which come first) is kept so a bids-only change CRCs only the bids.
    """

    __slots__ = (
        "ask_crc",
        "ask_frag",
        "ask_prices",
        "bid_frag",
        "bid_prices",
        "bid_top",
        "book",
        "depth",
    )

    def __init__(self, book: L2Book, depth: int) -> None:
        self.book = book
        self.depth = depth
        self.bid_frag: dict[int, bytes] = {}
        self.ask_frag: dict[int, bytes] = {}
        self.bid_top: bytes | None = None
        self.ask_crc: int | None = None
        self.bid_prices: dict[bytes, tuple[int, int, bytes]] = {}
        """price text -> (price_e8, sort key, checksum digits): prices repeat, sizes don't."""
        self.ask_prices: dict[bytes, tuple[int, int, bytes]] = {}

    def checksum(self) -> int:
        """The CRC32 of the book's top 10 asks then top 10 bids."""
        book = self.book
        if self.ask_crc is None:
            top = book.asks.keys(CHECKSUM_LEVELS)
            self.ask_crc = zlib.crc32(b"".join(map(self.ask_frag.__getitem__, top)))
        if self.bid_top is None:
            top = book.bids.keys(CHECKSUM_LEVELS)
            self.bid_top = b"".join(map(self.bid_frag.__getitem__, top))
        return zlib.crc32(self.bid_top, self.ask_crc)

    def snapshot(self, bids: Iterable[_Level], asks: Iterable[_Level]) -> None:
        """Replace the book (truncated to depth) with the given levels."""
        blv, self.bid_frag = _levels(bids, -1)
        alv, self.ask_frag = _levels(asks, 1)
        self.book.apply_snapshot(blv, alv)
        self.bid_top = self.ask_crc = None
        self._truncate([])

    def update(self, bids: Sequence[_Level], asks: Sequence[_Level]) -> list[Change]:
        """Apply level changes, truncate, and return the changes made."""
        changes: list[Change] = []
        book = self.book
        if bids and self._apply(book.bids, self.bid_frag, self.bid_prices, BID, bids, changes):
            self.bid_top = None
        if asks and self._apply(book.asks, self.ask_frag, self.ask_prices, ASK, asks, changes):
            self.ask_crc = None
        if len(book.bids.sizes) > self.depth or len(book.asks.sizes) > self.depth:
            self._truncate(changes)
        return changes

    def _apply(
        self,
        side: BookSide,
        frags: dict[int, bytes],
        prices: dict[bytes, tuple[int, int, bytes]],
        name: str,
        levels: Iterable[_Level],
        out: list[Change],
    ) -> bool:
        """Apply one side's changes; True if any reached the side's top 10 (checksum levels).

        ``prices`` memoises this side's price texts (bounded: cleared when it grows too big).
        """
        keys = side.keys(CHECKSUM_LEVELS)
        edge = keys[-1] if len(keys) == CHECKSUM_LEVELS else _ANY
        if len(prices) > PRICE_CACHE_SIZE:
            prices.clear()
        sign = -1 if side.is_bid else 1
        set_ = side.set
        append = out.append
        top = False
        for lv in levels:
            text = bytes(lv.price)
            known = prices.get(text)
            if known is None:
                e8, digits = _number(text)
                known = prices[text] = (e8, e8 * sign, digits)
            p, k, pd = known
            text = bytes(lv.qty)
            if text[-9:-8] == b".":  # Kraken's 8 decimals: `_number` inlined, the hot path
                digits = text.replace(b".", b"", 1)
                q = int(digits)
                digits = digits.lstrip(b"0")
            else:
                q, digits = _number(text)
            if q:
                frags[k] = pd + digits
                set_(p, q)
            elif set_(p, 0):
                del frags[k]
            else:
                continue  # Kraken sends deletes of levels it never published; nothing changed
            append((name, p, q))
            if k <= edge:
                top = True
        return top

    def _truncate(self, changes: list[Change]) -> None:
        # depth >= 10, so truncation never reaches the checksummed levels
        depth = self.depth
        for side, name, frags in (
            (self.book.bids, BID, self.bid_frag),
            (self.book.asks, ASK, self.ask_frag),
        ):
            if len(side.sizes) > depth:
                sign = -1 if side.is_bid else 1
                for p in side.truncate(depth):
                    del frags[p * sign]
                    changes.append((name, p, 0))


def _levels(levels: Iterable[_Level], sign: int) -> tuple[list[Level], dict[int, bytes]]:
    out: list[Level] = []
    frags: dict[int, bytes] = {}
    for lv in levels:
        p, pd = _number(bytes(lv.price))
        q, qd = _number(bytes(lv.qty))
        if q:
            out.append((p, q))
            frags[p * sign] = pd + qd
    return out, frags


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

    def _snapshot(
        self,
        symbol: str,
        bids: Iterable[_Level],
        asks: Iterable[_Level],
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
        bids: Sequence[_Level],
        asks: Sequence[_Level],
        recv_ns: int,
        exch_ns: int | None,
        expected: int | None,
    ) -> None:
        checked = self.checked[symbol]
        changes = checked.update(bids, asks)
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

    _req_id = 0
    """The last request id sent (per feed, from its first request)."""
    _last_ping_ns = 0

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
        try:
            frame: _BookFrame | None = _decode_book(text)
        except msgspec.DecodeError:  # another frame type, or not JSON (orjson then says so)
            frame = None
        if frame is not None and frame.channel == "book":
            self._book(frame, recv_ns)
            return
        msg = orjson.loads(text)
        channel = msg.get("channel")
        if channel == "book":  # a book frame the typed decode refused: a malformed one
            err = "book frame of an unknown shape"
            raise ProtocolError(err)
        if channel is None and "method" in msg:
            method = msg["method"]
            if msg.get("success") is False:
                self.event("error", "", f"{method}: {msg.get('error')}", recv_ns)
            elif method == "subscribe":
                self.event("subscribed", str(msg.get("result", {}).get("symbol", "")), "", recv_ns)

    def _book(self, frame: _BookFrame, recv_ns: int) -> None:
        is_snapshot = frame.type == "snapshot"
        for d in frame.data:
            symbol = d.symbol
            if symbol not in self.books:
                continue
            ts = d.timestamp
            exch_ns = rfc3339_ns(ts) if ts else None
            if is_snapshot:
                self._snapshot(symbol, d.bids, d.asks, recv_ns, exch_ns, d.checksum)
            elif not self.is_pending(symbol):
                self._update(symbol, d.bids, d.asks, recv_ns, exch_ns, d.checksum)


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


def _v1_levels(levels: Iterable[list[str]]) -> list[_Level]:
    return [_text_level(lv[0], lv[1]) for lv in levels]


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
