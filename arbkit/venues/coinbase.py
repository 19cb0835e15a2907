"""Coinbase market data: Advanced Trade ``level2`` (live) and the legacy Exchange ``level2``.

`CoinbaseFeed` follows the Advanced Trade WebSocket as documented and captured in 2026
(reference/brti-and-venues.md §2.1; capture of 2026-08-09): subscribe ``level2`` and
``heartbeats`` per channel, book frames on channel ``l2_data`` (``snapshot`` then ``update``
events, ``new_quantity`` absolute, sides ``bid``/``offer``), and an envelope ``sequence_num``
that counts every message of the connection across all channels, heartbeats and
``subscriptions`` included. A jump is a lost message: every book on the connection is
resynced by reconnecting (Advanced Trade has no REST sequence to align to). A number already
seen is a repeated frame: it is counted as a ``duplicate`` and dropped, never taken for a gap.

`CoinbaseExchangeFeed` is a separate mapper for the legacy Coinbase Pro/Exchange feed format
of 2021 (``ws-feed.pro.coinbase.com`` ``level2``: ``snapshot`` with ``[price, size]`` pairs,
``l2update`` with ``[side, price, size]`` changes and a ``time``; no sequence numbers), so old
recordings replay through the same book.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
import orjson

from arbkit.core.book import ASK, BID, L2Book, Level
from arbkit.core.clock import rfc3339_ns
from arbkit.core.errors import ProtocolError
from arbkit.core.events import SpotBookRow
from arbkit.venues.spot import SPOT_SCALES, SpotFeed, register_feed, spot

_EXCHANGE_SIDES = {"buy": BID, "sell": ASK}


class _Update(msgspec.Struct, gc=False):
    side: str
    price_level: str
    new_quantity: str


class _Event(msgspec.Struct, gc=False):
    type: str
    product_id: str
    updates: list[_Update]


class _L2Frame(msgspec.Struct, gc=False):
    """An ``l2_data`` frame as typed structs (other fields, e.g. ``event_time``, are skipped)."""

    channel: str
    timestamp: str
    events: list[_Event]
    sequence_num: int | None = None


_decode_l2 = msgspec.json.Decoder(_L2Frame).decode


@register_feed
class CoinbaseFeed(SpotFeed):
    """Coinbase Advanced Trade ``level2`` + ``heartbeats`` with ``sequence_num`` gap checks.

    Book frames are decoded straight into typed structs (msgspec: no dicts, a third faster
    than ``orjson.loads`` here); a frame of another shape (heartbeats, subscriptions, errors)
    fails that decode and is read with orjson instead.
    """

    venue: ClassVar[str] = "coinbase"
    default_silence_timeout: ClassVar[float] = 15.0
    channels: ClassVar[tuple[str, ...]] = ("level2", "heartbeats")

    _next_seq: int | None = None

    def subscribe(self, now_ns: int) -> None:
        self._next_seq = None
        products = list(self.symbols)
        for channel in self.channels:
            self.send({"type": "subscribe", "product_ids": products, "channel": channel})

    def handle(self, text: str, recv_ns: int) -> None:
        try:
            frame: _L2Frame | None = _decode_l2(text)
        except msgspec.DecodeError:  # another frame type, or not JSON (orjson then says so)
            frame = None
        if frame is None or frame.channel != "l2_data":
            self._other(orjson.loads(text), text, recv_ns)
            return
        seq = frame.sequence_num
        if self._sequence(seq, recv_ns):
            self._l2_data(frame, recv_ns, seq)

    def _sequence(self, seq: int | None, recv_ns: int) -> bool:
        """Check the connection-wide ``sequence_num``: a jump resyncs every book; a number
        already taken is a duplicate frame (False: drop it)."""
        if seq is None:
            return True
        expected = self._next_seq
        if expected is not None and seq < expected:
            self.event("duplicate", "", "sequence_num repeated", recv_ns, expected, seq)
            return False
        self._next_seq = seq + 1
        if expected is not None and seq != expected:
            self.event("gap", "", "sequence_num jump", recv_ns, expected, seq)
            for sym in self.symbols:
                self.resync(sym, recv_ns, f"sequence_num gap: expected {expected}, got {seq}")
        return True

    def _other(self, msg: dict[str, Any], text: str, recv_ns: int) -> None:
        """Any frame but a book frame: heartbeats, subscriptions, errors."""
        if not self._sequence(msg.get("sequence_num"), recv_ns):
            return
        channel = msg.get("channel")
        if channel == "l2_data":  # a book frame the typed decode refused: a malformed one
            msg_ = "l2_data frame of an unknown shape"
            raise ProtocolError(msg_)
        if channel == "subscriptions":
            self.event("subscribed", "", orjson.dumps(msg["events"]).decode(), recv_ns)
        elif msg.get("type") == "error":
            self.event("error", "", str(msg.get("message", text[:200])), recv_ns)

    def _l2_data(self, frame: _L2Frame, recv_ns: int, seq: int | None) -> None:
        """Apply a book frame: level updates (the hot path: `SpotFeed.apply_changes` fused with
        the parsing of the levels) or a snapshot."""
        exch_ns = rfc3339_ns(frame.timestamp)
        for ev in frame.events:
            book = self.books.get(ev.product_id)
            if book is None:
                continue
            kind = ev.type
            if kind == "snapshot":
                self._snapshot(book, ev.updates, recv_ns, exch_ns, seq)
                continue
            if kind != "update":
                msg = f"unknown l2_data event type {kind!r}"
                raise ProtocolError(msg)
            write = self.sink.write
            prices = self.price_cache()
            bids, asks = book.bids, book.asks
            venue, symbol, conn_id = self.venue, book.symbol, self.conn_id
            for u in ev.updates:
                text = u.price_level
                p = prices.get(text)
                if p is None:
                    p = prices[text] = spot(text)
                text = u.new_quantity
                whole, _, frac = text.partition(".")  # `spot` inlined: a call costs a third
                s = int(whole + frac) * SPOT_SCALES[len(frac)] if len(frac) <= 8 else spot(text)
                side = u.side
                if side == "bid":
                    bids.set(p, s)
                    side = BID
                elif side == "offer":
                    asks.set(p, s)
                    side = ASK
                else:
                    msg = f"unknown l2_data side {side!r}"
                    raise ProtocolError(msg)
                write(
                    SpotBookRow(
                        recv_ns, exch_ns, venue, symbol, side, p, s, False, seq, None, conn_id
                    )
                )
            self.touched(book, recv_ns)

    def _snapshot(
        self, book: L2Book, updates: list[_Update], recv_ns: int, exch_ns: int, seq: int | None
    ) -> None:
        levels: dict[str, list[Level]] = {"bid": [], "offer": []}
        for u in updates:
            levels[u.side].append((spot(u.price_level), spot(u.new_quantity)))
        self.apply_snapshot(book.symbol, levels["bid"], levels["offer"], recv_ns, exch_ns, seq=seq)


class CoinbaseExchangeFeed(SpotFeed):
    """The legacy Coinbase Exchange ``level2`` format (2021 recordings); no gap detection."""

    venue: ClassVar[str] = "coinbase"
    default_silence_timeout: ClassVar[float] = 15.0

    def subscribe(self, now_ns: int) -> None:
        self.send(
            {
                "type": "subscribe",
                "product_ids": list(self.symbols),
                "channels": ["level2_batch", "heartbeat"],
            }
        )

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        kind = msg.get("type")
        if kind == "l2update":
            book = self.books.get(msg["product_id"])
            if book is None:
                return
            sides = _EXCHANGE_SIDES
            changes = [(sides[side], spot(p), spot(s)) for side, p, s in msg["changes"]]
            self.apply_changes(book, changes, recv_ns, _exchange_time(msg.get("time")))
        elif kind == "snapshot":
            symbol = msg["product_id"]
            if symbol not in self.books:
                return
            bids = [(spot(p), spot(s)) for p, s, *_ in msg["bids"]]
            asks = [(spot(p), spot(s)) for p, s, *_ in msg["asks"]]
            self.apply_snapshot(symbol, bids, asks, recv_ns, _exchange_time(msg.get("time")))
        elif kind == "subscriptions":
            self.event("subscribed", "", orjson.dumps(msg["channels"]).decode(), recv_ns)
        elif kind == "error":
            self.event("error", "", f"{msg.get('message')}: {msg.get('reason')}", recv_ns)


def _exchange_time(text: str | None) -> int | None:
    """The Exchange feed's ``time``; the rare bogus ``0001-01-01T00:00:00Z`` reads as unknown."""
    if not text or text.startswith("0001-"):
        return None
    return rfc3339_ns(text)


def parse_rest_book(text: str) -> tuple[list[Level], list[Level], int | None]:
    """An Advanced Trade REST ``/market/product_book`` reply as (bids, asks, exch_ns).

    Shape as captured 2026-04-07: ``{"pricebook": {"product_id", "bids": [{"price", "size"}],
    "asks": [...], "time"}, ...}``.
    """
    book = orjson.loads(text)["pricebook"]
    bids = [(spot(lv["price"]), spot(lv["size"])) for lv in book["bids"]]
    asks = [(spot(lv["price"]), spot(lv["size"])) for lv in book["asks"]]
    return bids, asks, rfc3339_ns(book["time"]) if book.get("time") else None
