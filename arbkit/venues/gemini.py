"""Gemini market data: three wire generations, one mapper each (a new mapper, not an ``if``).

- `GeminiFeed` — **v1** (the registered live feed; reference/brti-and-venues.md §2.4a,
  Gemini's asyncapi examples as mirrored in 2026): ``/v1/marketdata/BTCUSD?heartbeat=true``,
  one symbol per socket, no subscribe message. Every message, heartbeats (every 5 s) included,
  carries ``socket_sequence``: zero-based, +1 per message, so a jump is a lost message (a
  number seen before is a repeat, skipped). The only way to a fresh book is a new connection,
  whose first ``update`` (its events say ``reason: "initial"``) is the whole book. ``remaining``
  is the new absolute level size; ``timestampms`` is the venue time (absent on the initial
  update).
- `GeminiV2Feed` — **v2** ``l2`` (shape of the real capture of 2026-08-09): the first
  ``l2_updates`` per symbol is the whole book and also carries ``trades`` and
  ``auction_events`` (their presence marks the snapshot); changes are
  ``[side, price, new_qty]`` with sides ``buy``/``sell``. No sequence numbers and no timestamps,
  so a lost update cannot be detected; an unreadable frame (possibly an update) resyncs.
- `GeminiV3Feed` — **v3** ``depthUpdate`` (Binance-style, live from 2026-07 per tardis-node;
  no capture seen): ``wss://ws.gemini.com?snapshot=-1``, subscribe ``btcusd@depth@100ms``;
  frames carry update ids ``U`` (first) .. ``u`` (last) and ``E`` in nanoseconds; the first
  frame per symbol after connecting is the whole book. A frame with ``u <= last u`` is a
  duplicate; ``U > last u + 1`` is a gap (resynced by reconnecting). Keepalive
  ``{"id": n, "method": "ping"}``; its interval is not documented (we send one every 30 s).
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from arbkit.core.book import ASK, BID, Level
from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError, ProtocolError
from arbkit.core.sink import Sink
from arbkit.venues.spot import Change, SpotFeed, register_feed, spot

_V1_SIDES = {"bid": BID, "ask": ASK}
_V2_SIDES = {"buy": BID, "sell": ASK}


def split_sides(changes: list[Change]) -> tuple[list[Level], list[Level]]:
    """Split a snapshot given as changes into (bids, asks) levels."""
    bids: list[Level] = []
    asks: list[Level] = []
    for side, p, s in changes:
        (bids if side == BID else asks).append((p, s))
    return bids, asks


def v1_changes(events: list[dict[str, Any]]) -> list[Change]:
    """The book changes of a v1 ``update``'s events (trades and auction events carry none)."""
    sides = _V1_SIDES
    changes: list[Change] = []
    for ev in events:
        if ev["type"] != "change":
            continue
        side = sides.get(ev["side"])
        if side is None:
            msg = f"Gemini v1 change with side {ev['side']!r}; expected 'bid' or 'ask'"
            raise ProtocolError(msg)
        changes.append((side, spot(ev["price"]), spot(ev["remaining"])))
    return changes


def v2_changes(rows: list[list[str]]) -> list[Change]:
    """The changes of a v2 ``l2_updates``: ``[side, price, new_qty]`` rows."""
    sides = _V2_SIDES
    return [(sides[side], spot(p), spot(q)) for side, p, q in rows]


def v3_changes(bids: list[list[str]], asks: list[list[str]]) -> list[Change]:
    """The changes of a v3 ``depthUpdate`` (``b``/``a`` as ``[price, qty]`` rows)."""
    out: list[Change] = [(BID, spot(p), spot(q)) for p, q, *_ in bids]
    out.extend((ASK, spot(p), spot(q)) for p, q, *_ in asks)
    return out


@register_feed
class GeminiFeed(SpotFeed):
    """Gemini v1 market data for one symbol, with ``socket_sequence`` gap detection."""

    venue: ClassVar[str] = "gemini"
    default_silence_timeout: ClassVar[float] = 15.0  # three missed 5 s heartbeats

    def __init__(self, endpoint: Endpoint, sink: Sink, **options: Any) -> None:
        super().__init__(endpoint, sink, **options)
        if len(self.symbols) != 1:
            msg = (
                f"Gemini v1 serves one symbol per connection, got {list(self.symbols)}: "
                "run one GeminiFeed per symbol"
            )
            raise ConfigError(msg)
        self.symbol = self.symbols[0]
        self._next_seq: int | None = None
        """The ``socket_sequence`` due next; None after a gap until the reconnect."""
        self._initial = True
        """True until the socket's first ``update`` (the whole book) has arrived."""

    def subscribe(self, now_ns: int) -> None:
        self._next_seq = 0  # the URL is the subscription; numbering restarts per socket
        self._initial = True

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        kind = msg["type"]
        seq = msg.get("socket_sequence")
        if seq is not None:
            expected = self._next_seq
            if expected is None:
                return  # a gap already condemned this socket; the reconnect is on its way
            if seq < expected:
                self.event("duplicate", self.symbol, f"socket_sequence {seq} again", recv_ns)
                return
            if seq != expected:
                self._next_seq = None
                self.gap(self.symbol, recv_ns, expected, seq, detail="socket_sequence jump")
                return
            self._next_seq = seq + 1
        if kind != "update":
            return  # heartbeat: sequence only
        changes = v1_changes(msg["events"])
        ms = msg.get("timestampms")
        exch_ns = None if ms is None else ms * 1_000_000
        if self._initial:  # its events say reason "initial"; an empty book has none
            self._initial = False
            bids, asks = split_sides(changes)
            self.apply_snapshot(self.symbol, bids, asks, recv_ns, exch_ns, seq=seq)
        elif changes and not self.is_pending(self.symbol):
            self.apply_changes(self.books[self.symbol], changes, recv_ns, exch_ns, seq=seq)


class GeminiV2Feed(SpotFeed):
    """Gemini v2 ``l2`` (2026 captures): snapshot per symbol, then changes; no gap detection.

    Connects to the configured ws URL as is (point it at ``.../v2/marketdata``).
    """

    venue: ClassVar[str] = "gemini"
    default_silence_timeout: ClassVar[float] = 15.0
    resync_on_unreadable: ClassVar[bool] = True

    def url(self) -> str:
        return self.endpoint.ws

    def subscribe(self, now_ns: int) -> None:
        self.send(
            {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": list(self.symbols)}]}
        )

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        if msg["type"] != "l2_updates":
            return  # heartbeat, trade
        symbol = msg["symbol"]
        book = self.books.get(symbol)
        if book is None:
            return
        changes = v2_changes(msg["changes"])
        if "auction_events" in msg:
            bids, asks = split_sides(changes)
            self.apply_snapshot(symbol, bids, asks, recv_ns, None)
        elif not self.is_pending(symbol):
            self.apply_changes(book, changes, recv_ns, None)


class GeminiV3Feed(SpotFeed):
    """Gemini v3 ``depthUpdate`` with ``U``/``u`` update-id chaining.

    Connects to the configured ws URL plus ``?snapshot=-1`` (point it at ``wss://ws.gemini.com``).
    """

    venue: ClassVar[str] = "gemini"
    default_silence_timeout: ClassVar[float] = 15.0
    keepalive_ns: ClassVar[int] = 30_000_000_000

    def __init__(self, endpoint: Endpoint, sink: Sink, **options: Any) -> None:
        super().__init__(endpoint, sink, **options)
        self._last_u: dict[str, int] = {}
        self._next_id = 1
        self._last_ping_ns = 0

    def url(self) -> str:
        return self.endpoint.ws.rstrip("/") + "?snapshot=-1"

    def _command(self, method: str, params: list[str] | None = None) -> None:
        cmd: dict[str, Any] = {"method": method, "id": self._next_id}
        if params is not None:
            cmd["params"] = params
        self._next_id += 1
        self.send(cmd)

    def subscribe(self, now_ns: int) -> None:
        self._last_u.clear()
        self._last_ping_ns = now_ns
        self._command("SUBSCRIBE", [f"{s.lower()}@depth@100ms" for s in self.symbols])

    def timer(self, now_ns: int) -> None:
        if self.conn_id and now_ns - self._last_ping_ns >= self.keepalive_ns:
            self._last_ping_ns = now_ns
            self._command("ping")

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        if msg.get("e") != "depthUpdate":
            return  # command results, pongs, other streams
        symbol = msg["s"]
        book = self.books.get(symbol)
        if book is None:
            return
        first, last = msg["U"], msg["u"]
        changes = v3_changes(msg.get("b") or [], msg.get("a") or [])
        exch_ns = msg["E"]
        if self.is_pending(symbol):
            if symbol in self._last_u:
                return  # frames after a gap, before the reconnect
            bids, asks = split_sides(changes)
            self.apply_snapshot(symbol, bids, asks, recv_ns, exch_ns, seq=last)
            self._last_u[symbol] = last
            return
        prev = self._last_u[symbol]
        if last <= prev:
            self.event("duplicate", symbol, f"update ids {first}..{last} already applied", recv_ns)
            return
        if first > prev + 1:
            self.gap(symbol, recv_ns, prev + 1, first, detail="depthUpdate U jump")
            return
        self._last_u[symbol] = last
        self.apply_changes(book, changes, recv_ns, exch_ns, seq=last)
