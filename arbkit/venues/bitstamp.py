"""Bitstamp WebSocket v2 order books: full top-100 frames, or diffs aligned to a REST snapshot.

Follows the ``wss://ws.bitstamp.net`` protocol as recorded 2022-01-05 and described by the
2024-2026 sources of reference/brti-and-venues.md §2.3: ``bts:subscribe`` per channel,
``data`` frames carrying ``timestamp`` (s) and ``microtimestamp`` (µs, the venue clock) with
``[price, amount]`` levels, client ``bts:heartbeat`` keepalives and ``bts:request_reconnect``.
There are no sequence numbers and no checksum.

Two modes:

- ``"full"`` (default): channel ``order_book_<pair>``; every frame is the whole top 100 and
  replaces the book (rows are written for what changed). Frames whose microtimestamp does not
  increase are dropped and recorded. Self-healing, so a resync just waits for the next frame.
- ``"diff"``: channel ``diff_order_book_<pair>``; changed levels only (amount 0 deletes). Once
  subscribed, the feed asks its driver for the REST book (an `HttpRequest`, see
  `SpotFeed.take_http`), buffers diffs until `on_http_response` delivers it, drops the
  buffered diffs with ``microtimestamp <= snapshot microtimestamp`` and applies the rest.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson

from arbkit.core.book import ASK, BID, BookSide, Level
from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError
from arbkit.core.retry import Backoff
from arbkit.core.sink import Sink
from arbkit.venues.spot import (
    Change,
    HttpRequest,
    SpotFeed,
    register_feed,
    spot,
    venue_urls,
)

MODES = ("full", "diff")
MAX_BUFFERED = 10_000
"""Diff frames held while waiting for the REST snapshot; beyond this the snapshot is re-asked."""

SNAPSHOT_RETRY_S = 1.0
"""First wait before a failed REST snapshot is asked again (doubling, capped)."""


@register_feed
class BitstampFeed(SpotFeed):
    """Bitstamp ``order_book_<pair>`` (full frames) or ``diff_order_book_<pair>`` + REST."""

    venue: ClassVar[str] = "bitstamp"
    default_silence_timeout: ClassVar[float] = 45.0
    # A quiet order_book channel may send its first frame only after tens of seconds.
    default_resync_timeout: ClassVar[float] = 90.0
    heartbeat_interval_ns: ClassVar[int] = 20_000_000_000

    def __init__(
        self,
        endpoint: Endpoint,
        sink: Sink,
        *,
        symbol: str | Sequence[str] | None = None,
        mode: str = "full",
        **options: Any,
    ) -> None:
        if mode not in MODES:
            msg = f"bitstamp mode {mode!r} is unknown: use 'full' or 'diff'"
            raise ConfigError(msg)
        super().__init__(endpoint, sink, symbol=symbol, **options)
        self.mode = mode
        self._prefix = "order_book_" if mode == "full" else "diff_order_book_"
        self._last_mt: dict[str, int] = {}
        self._buffer: dict[str, list[dict[str, Any]]] = {}
        self._last_heartbeat_ns = 0
        self._retry_at: dict[str, int] = {}
        """Diff mode: when a failed REST snapshot is asked again (capped backoff, no storm)."""
        self._retry_backoff: dict[str, Backoff] = {}

    def channel(self, symbol: str) -> str:
        return self._prefix + symbol

    def subscribe(self, now_ns: int) -> None:
        self._last_heartbeat_ns = now_ns
        self._last_mt.clear()
        self._buffer.clear()
        self._retry_at.clear()
        for sym in self.symbols:
            if self.mode == "diff":
                self._buffer[sym] = []  # diffs wait for the REST snapshot
            self.send({"event": "bts:subscribe", "data": {"channel": self.channel(sym)}})

    def timer(self, now_ns: int) -> None:
        if now_ns - self._last_heartbeat_ns >= self.heartbeat_interval_ns:
            self._last_heartbeat_ns = now_ns
            self.send({"event": "bts:heartbeat"})
        for symbol, due in list(self._retry_at.items()):
            if now_ns >= due:
                del self._retry_at[symbol]
                self._ask_rest(symbol)

    def request_snapshot(self, symbol: str, why: str) -> None:
        """Full mode: the next frame is a snapshot; diff mode: fetch the REST book again."""
        if self.mode == "diff":
            self._buffer[symbol] = []
            self._ask_rest(symbol)

    def _ask_rest(self, symbol: str) -> None:
        self._buffer.setdefault(symbol, [])
        url = venue_urls(self.venue, self.endpoint, symbol).rest
        self.request_http(HttpRequest(url, symbol, self.conn_id))

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        event = msg.get("event")
        if event == "data":
            channel: str = msg["channel"]
            if channel.startswith(self._prefix):
                symbol = channel[len(self._prefix) :]
                if symbol in self.books:
                    self._data(symbol, msg["data"], recv_ns)
        elif event == "bts:subscription_succeeded":
            channel = msg.get("channel", "")
            self.event("subscribed", channel, "", recv_ns)
            symbol = channel[len(self._prefix) :] if channel.startswith(self._prefix) else ""
            if self.mode == "diff" and symbol in self.books:
                self._ask_rest(symbol)
        elif event == "bts:request_reconnect":
            self.reconnect_reason = "bts:request_reconnect from the server"
        elif event == "bts:error":
            self.event("error", "", str(msg.get("data", {}).get("message", text[:200])), recv_ns)

    def _data(self, symbol: str, data: dict[str, Any], recv_ns: int) -> None:
        mt = int(data["microtimestamp"])
        if self.mode == "diff":
            buffered = self._buffer.get(symbol)
            if buffered is not None:
                buffered.append(data)
                if len(buffered) > MAX_BUFFERED:
                    self.event("dropped", symbol, f"{len(buffered)} diffs buffered", recv_ns)
                    self._buffer[symbol] = []
                    self._ask_rest(symbol)
                return
        last = self._last_mt.get(symbol)
        if last is not None and mt <= last:
            self.event(
                "duplicate", symbol, "microtimestamp not newer than the book", recv_ns, last, mt
            )
            return
        self._last_mt[symbol] = mt
        book = self.books[symbol]
        bids, asks = _levels(data["bids"]), _levels(data["asks"])
        exch_ns = mt * 1000
        if self.mode == "diff":
            changes = [(BID, p, s) for p, s in bids] + [(ASK, p, s) for p, s in asks]
            self.apply_changes(book, changes, recv_ns, exch_ns)
        elif self.is_pending(symbol) or not book.valid:
            self.apply_snapshot(symbol, bids, asks, recv_ns, exch_ns)
        else:
            changes = _diff(book.bids, BID, bids) + _diff(book.asks, ASK, asks)
            self.apply_changes(book, changes, recv_ns, exch_ns)

    def on_http_response(self, request: HttpRequest, status: int, text: str, recv_ns: int) -> None:
        """The REST book a diff-mode feed asked for: apply it and the diffs buffered after it."""
        symbol = request.symbol
        if request.conn_id != self.conn_id or self._buffer.get(symbol) is None:
            return  # an answer for an older connection or request
        try:
            if status != 200:
                raise ValueError(f"HTTP {status}")
            bids, asks, exch_ns = parse_rest_book(text)
        except (ValueError, KeyError, TypeError) as exc:  # refused, or not a book: retry later
            # jitter seeded per symbol: a replay of the recording draws the same delays
            backoff = self._retry_backoff.setdefault(
                symbol, Backoff(SNAPSHOT_RETRY_S, rng=random.Random(f"bitstamp:{symbol}"))
            )
            delay = backoff.delay(recv_ns / 1e9)
            self._retry_at[symbol] = recv_ns + int(delay * 1e9)
            self.event("error", symbol, f"REST snapshot: {exc}; again in {delay:.1f} s", recv_ns)
            return
        self._retry_backoff.pop(symbol, None)
        snap_mt = exch_ns // 1000
        buffered = self._buffer.pop(symbol)
        self.apply_snapshot(symbol, bids, asks, recv_ns, exch_ns)
        self._last_mt[symbol] = snap_mt
        older = sum(1 for d in buffered if int(d["microtimestamp"]) <= snap_mt)
        if older:
            self.event("duplicate", symbol, f"{older} diffs older than the snapshot", recv_ns)
        for data in buffered:
            if int(data["microtimestamp"]) > snap_mt:
                self._data(symbol, data, recv_ns)


def _levels(levels: list[list[str]]) -> list[Level]:
    return [(spot(lv[0]), spot(lv[1])) for lv in levels]


def _diff(side: BookSide, name: str, levels: list[Level]) -> list[Change]:
    """The changes that turn ``side`` into exactly ``levels``."""
    old = side.sizes
    new = dict(levels)
    changes: list[Change] = [(name, p, s) for p, s in new.items() if old.get(p) != s]
    changes += [(name, p, 0) for p in old if p not in new]
    return changes


def parse_rest_book(text: str) -> tuple[list[Level], list[Level], int]:
    """A REST ``/order_book/<pair>/`` reply as (bids, asks, exch_ns)."""
    snap = orjson.loads(text)
    return _levels(snap["bids"]), _levels(snap["asks"]), int(snap["microtimestamp"]) * 1000
