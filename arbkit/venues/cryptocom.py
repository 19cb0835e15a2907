"""Crypto.com Exchange market data: API v1 delta book (live) and legacy v2 full books.

- `CryptocomFeed` — **Exchange API v1** (reference/brti-and-venues.md §2.5; docs as of 2025-03,
  after the default-depth channel was removed and 100 ms snapshots were dropped):
  ``book.BTC_USD.50`` with ``book_subscription_type: SNAPSHOT_AND_UPDATE``. The venue asks
  clients to wait about a second after connecting before the first request, so the subscribe
  goes out from the timer. ``channel: "book"`` is a snapshot with update id ``u``;
  ``channel: "book.update"`` a delta with ``u`` and the previous id ``pu`` (an empty delta
  arrives after 5 s without changes and still advances them). A delta applies only if ``pu``
  equals the last ``u``; one whose ``u`` is not beyond the last is a repeat and is skipped;
  any other is a gap, resynced by subscribing again (no unsubscribe needed), which yields a
  new snapshot. Levels are ``[price, size, order_count]`` strings with the absolute size ("0"
  deletes); ``t`` (publish time, ms) is the venue time. The server sends ``public/heartbeat``
  every 30 s and disconnects clients that do not answer ``public/respond-heartbeat`` with the
  same id within 5 s.
- `CryptocomV2Feed` — **legacy v2** (``wss://stream.crypto.com/v2/market``, shape of the real
  capture of 2021-11-23): ``book.{inst}.150``, every frame a complete book with prices and
  sizes as JSON *numbers*; same heartbeat. No ids, so no gap detection (none is needed).
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from arbkit.core.book import ASK, BID, Level
from arbkit.core.config import Endpoint
from arbkit.core.fixed import SPOT_DIGITS, parse_number
from arbkit.core.sink import Sink
from arbkit.venues.spot import Change, SpotFeed, register_feed, spot

SUBSCRIBE_DELAY_NS = 1_000_000_000
"""Crypto.com: wait about 1 s after connecting before sending a request."""


def heartbeat_reply(heartbeat_id: int) -> str:
    """The exact answer to a ``public/heartbeat`` carrying ``heartbeat_id``."""
    return orjson.dumps({"id": heartbeat_id, "method": "public/respond-heartbeat"}).decode()


def levels(rows: list[list[Any]]) -> list[Level]:
    """``[price, size, (order_count)]`` rows (strings or JSON numbers) as exact levels."""
    return [(parse_number(r[0], SPOT_DIGITS), parse_number(r[1], SPOT_DIGITS)) for r in rows]


def delta_changes(update: dict[str, list[list[str]]]) -> list[Change]:
    """The changes of a ``book.update`` delta's ``update`` object (v1: string levels)."""
    out: list[Change] = [(BID, spot(r[0]), spot(r[1])) for r in update.get("bids") or ()]
    out.extend((ASK, spot(r[0]), spot(r[1])) for r in update.get("asks") or ())
    return out


@register_feed
class CryptocomFeed(SpotFeed):
    """Crypto.com Exchange v1 ``book.{inst}.{depth}`` deltas chained by ``pu``/``u``."""

    venue: ClassVar[str] = "cryptocom"
    default_silence_timeout: ClassVar[float] = 20.0  # empty deltas come every 5 s at least

    def __init__(self, endpoint: Endpoint, sink: Sink, *, depth: int = 50, **options: Any) -> None:
        super().__init__(endpoint, sink, **options)
        self.depth = depth
        self._last_u: dict[str, int] = {}
        self._subscribe_at: int | None = None
        self._next_id = 1
        self._now_ns = 0
        """Latest time seen (frame or timer), for the ``nonce`` of a resync's subscribe."""

    def channel(self, symbol: str) -> str:
        return f"book.{symbol}.{self.depth}"

    def subscription_params(self, channels: list[str]) -> dict[str, Any]:
        return {
            "channels": channels,
            "book_subscription_type": "SNAPSHOT_AND_UPDATE",
            "book_update_frequency": 10,
        }

    def subscribe(self, now_ns: int) -> None:
        self._last_u.clear()
        self._subscribe_at = now_ns + SUBSCRIBE_DELAY_NS

    def timer(self, now_ns: int) -> None:
        self._now_ns = now_ns
        if self._subscribe_at is not None and now_ns >= self._subscribe_at:
            self._subscribe_at = None
            self._send_subscribe(list(self.symbols), now_ns)

    def _send_subscribe(self, symbols: list[str], now_ns: int) -> None:
        params = self.subscription_params([self.channel(s) for s in symbols])
        self.send(
            {"id": self._next_id, "method": "subscribe", "params": params, "nonce": now_ns // 10**6}
        )
        self._next_id += 1

    def request_snapshot(self, symbol: str, why: str) -> None:
        """Subscribing again yields a new snapshot; if the first subscribe is still due, it
        will bring one anyway."""
        if self._subscribe_at is None and self.conn_id:
            self._send_subscribe([symbol], self._now_ns)

    def handle(self, text: str, recv_ns: int) -> None:
        self._now_ns = recv_ns
        msg = orjson.loads(text)
        method = msg.get("method")
        if method == "public/heartbeat":
            self.send(heartbeat_reply(msg["id"]))
            return
        code = msg.get("code", 0)
        if code:
            detail = f"{method} refused: code {code} {msg.get('message', '')}".rstrip()
            self.event("error", "", detail, recv_ns)
            return
        result = msg.get("result")
        if result is None:
            return  # subscribe ack
        book = self.books.get(result["instrument_name"])
        if book is not None:
            self.on_book(result, book.symbol, recv_ns)

    def on_book(self, result: dict[str, Any], symbol: str, recv_ns: int) -> None:
        """One ``book`` / ``book.update`` result for a symbol we follow."""
        channel = result["channel"]
        data = result["data"][0]
        if channel == "book":
            u = data["u"]
            self._last_u[symbol] = u
            self.apply_snapshot(
                symbol, levels(data["bids"]), levels(data["asks"]), recv_ns, _ms(data), seq=u
            )
        elif channel == "book.update":
            if self.is_pending(symbol):
                return  # deltas racing the resync's snapshot
            u, pu = data["u"], data["pu"]
            last = self._last_u[symbol]
            if u <= last:
                self.event("duplicate", symbol, f"book.update u={u} already applied", recv_ns)
                return
            if pu != last:
                self.gap(symbol, recv_ns, last, pu, detail="book.update pu != last u")
                return
            self._last_u[symbol] = u
            changes = delta_changes(data["update"])
            self.apply_changes(self.books[symbol], changes, recv_ns, _ms(data), seq=u)


class CryptocomV2Feed(CryptocomFeed):
    """Legacy Crypto.com v2 ``book.{inst}.150``: every frame a full book (2021 recordings).

    Connects to the configured ws URL as is (point it at ``.../v2/market``).
    """

    def __init__(self, endpoint: Endpoint, sink: Sink, *, depth: int = 150, **options: Any) -> None:
        super().__init__(endpoint, sink, depth=depth, **options)

    def subscription_params(self, channels: list[str]) -> dict[str, Any]:
        return {"channels": channels}

    def on_book(self, result: dict[str, Any], symbol: str, recv_ns: int) -> None:
        if result["channel"] == "book":
            data = result["data"][0]
            self.apply_snapshot(
                symbol, levels(data["bids"]), levels(data["asks"]), recv_ns, _ms(data)
            )


def _ms(data: dict[str, Any]) -> int | None:
    t = data.get("t")
    return None if t is None else int(t) * 1_000_000
