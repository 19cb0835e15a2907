"""Bullish ``l2Orderbook`` over the unauthenticated multi-orderbook WebSocket.

Wire format (reference/brti-and-venues.md §2.6, from tardis-node realtimefeeds/bullish.ts and
ccxt pro bullish.js, 2025-2026): JSON-RPC ``subscribe`` with ``params: {topic: "l2Orderbook",
symbol}``; book frames ``{"type": "snapshot"|"update", "dataType": "V1TALevel2", "data": {...}}``
whose ``bids``/``asks`` are *flat* ``[price, qty, price, qty, ...]`` string arrays,
``timestamp`` is the venue time (ms, as a string) and ``sequenceNumberRange`` is
``[first, last]``. Updates are applied as absolute-size deltas (qty 0 deletes), as tardis does.
The server drops clients idle for about 100 s, so a ``keepalivePing`` goes out every 30 s.

**Inferred, not documented:** the gap rule "an update's first sequence number is the previous
frame's last + 1" (a range only makes sense if consecutive frames chain that way); a frame
whose last number is not beyond the previous last is taken as a duplicate. A gap is resynced by
reconnecting, because whether a second subscribe re-sends a snapshot is not known. Unverified
too: the bodies of the subscribe reply, of ``V1TAHeartbeat`` and of the keepalive pong (all
ignored here except an ``error`` member, which is recorded).
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from arbkit.core.book import ASK, BID, Level
from arbkit.core.config import Endpoint
from arbkit.core.errors import ProtocolError
from arbkit.core.sink import Sink
from arbkit.venues.spot import Change, SpotFeed, register_feed, spot


def flat_levels(flat: list[str]) -> list[Level]:
    """A flat ``[price, qty, price, qty, ...]`` array as exact levels."""
    if len(flat) % 2:
        msg = f"Bullish level array of odd length {len(flat)}; expected [price, qty, ...] pairs"
        raise ProtocolError(msg)
    it = iter(flat)
    return [(spot(p), spot(q)) for p, q in zip(it, it, strict=True)]


def flat_changes(bids: list[str], asks: list[str]) -> list[Change]:
    """The changes of an ``update`` frame's flat arrays."""
    out: list[Change] = [(BID, p, q) for p, q in flat_levels(bids)]
    out.extend((ASK, p, q) for p, q in flat_levels(asks))
    return out


@register_feed
class BullishFeed(SpotFeed):
    """Bullish ``l2Orderbook`` with ``sequenceNumberRange`` chaining and keepalive pings."""

    venue: ClassVar[str] = "bullish"
    default_silence_timeout: ClassVar[float] = 70.0  # two keepalive answers missed
    keepalive_ns: ClassVar[int] = 30_000_000_000

    def __init__(self, endpoint: Endpoint, sink: Sink, **options: Any) -> None:
        super().__init__(endpoint, sink, **options)
        self._last_seq: dict[str, int] = {}
        self._next_id = 1
        self._last_ping_ns = 0

    def _command(self, method: str, params: dict[str, str] | None = None) -> None:
        cmd: dict[str, Any] = {
            "jsonrpc": "2.0",
            "type": "command",
            "method": method,
            "id": str(self._next_id),
        }
        if params is not None:
            cmd["params"] = params
        self._next_id += 1
        self.send(cmd)

    def subscribe(self, now_ns: int) -> None:
        self._last_seq.clear()
        self._last_ping_ns = now_ns
        for symbol in self.symbols:
            self._command("subscribe", {"topic": "l2Orderbook", "symbol": symbol})

    def timer(self, now_ns: int) -> None:
        if self.conn_id and now_ns - self._last_ping_ns >= self.keepalive_ns:
            self._last_ping_ns = now_ns
            self._command("keepalivePing")

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        if msg.get("dataType") != "V1TALevel2":
            if "error" in msg:
                self.event("error", "", f"command {msg.get('id')}: {msg['error']}", recv_ns)
            return  # heartbeats, pongs, command results
        data = msg["data"]
        symbol = data["symbol"]
        book = self.books.get(symbol)
        if book is None:
            return
        first, last = data["sequenceNumberRange"]
        exch_ns = int(data["timestamp"]) * 1_000_000
        kind = msg["type"]
        if kind == "snapshot":
            self._last_seq[symbol] = last
            bids, asks = flat_levels(data["bids"]), flat_levels(data["asks"])
            self.apply_snapshot(symbol, bids, asks, recv_ns, exch_ns, seq=last)
            return
        if kind != "update":
            msg_ = f"Bullish V1TALevel2 frame of type {kind!r}; expected snapshot or update"
            raise ProtocolError(msg_)
        if self.is_pending(symbol):
            return  # after a gap, until the reconnect's snapshot
        prev = self._last_seq[symbol]
        if last <= prev:
            self.event("duplicate", symbol, f"sequence {first}..{last} already applied", recv_ns)
            return
        if first != prev + 1:
            self.gap(symbol, recv_ns, prev + 1, first, detail="sequenceNumberRange jump")
            return
        self._last_seq[symbol] = last
        changes = flat_changes(data["bids"], data["asks"])
        self.apply_changes(book, changes, recv_ns, exch_ns, seq=last)
