"""Paxos (itBit) public market data: ``/marketdata/{market}``.

Wire format as far as it is known (reference/brti-and-venues.md §2.8; secondary sources only,
one of which calls itself unverified; no real capture exists): one market per socket chosen
by the URL path, no subscribe message, native WebSocket ping/pong (answered by the runner).
``{"type": "SNAPSHOT", "market", "bids": [{"price", "amount"}], "asks": [...],
"final_snapshot": true}``, then ``{"type": "UPDATE", "market", "side": "BUY"|"SELL", "price",
"amount"}`` carrying the level's new absolute amount ("0" deletes).

**Unverified:** all of the above beyond its source's description, in particular that a
snapshot may be split over several frames until ``final_snapshot`` is true (handled: parts
accumulate until then; a frame without the flag counts as complete), the side names, and that
amounts are absolute. Paxos sends **no sequence numbers and no timestamps**: a lost update
cannot be detected (only a dropped socket or an unreadable frame is seen, and both lead to a
fresh snapshot through a reconnect) and ``exch_ns`` is always null.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from arbkit.core.book import ASK, BID, Level
from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError, ProtocolError
from arbkit.core.sink import Sink
from arbkit.venues.spot import SpotFeed, register_feed, spot

_SIDES = {"BUY": BID, "SELL": ASK}


def amount_levels(rows: list[dict[str, str]]) -> list[Level]:
    """``[{"price", "amount"}]`` rows as exact levels."""
    return [(spot(r["price"]), spot(r["amount"])) for r in rows]


@register_feed
class PaxosFeed(SpotFeed):
    """Paxos ``/marketdata/{market}`` snapshot + absolute updates (no integrity checks exist)."""

    venue: ClassVar[str] = "paxos"
    default_silence_timeout: ClassVar[float] = 60.0
    resync_on_unreadable: ClassVar[bool] = True

    def __init__(self, endpoint: Endpoint, sink: Sink, **options: Any) -> None:
        super().__init__(endpoint, sink, **options)
        if len(self.symbols) != 1:
            msg = (
                f"Paxos serves one market per connection, got {list(self.symbols)}: "
                "run one PaxosFeed per market"
            )
            raise ConfigError(msg)
        self._parts: tuple[list[Level], list[Level]] = ([], [])
        """Levels of a snapshot split over frames, until ``final_snapshot``."""

    def subscribe(self, now_ns: int) -> None:
        self._parts = ([], [])  # the URL path is the subscription

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        kind = msg["type"]
        if kind == "UPDATE":
            book = self.books.get(msg["market"])
            if book is None or self.is_pending(book.symbol):
                return
            side = _SIDES.get(msg["side"])
            if side is None:
                err = f"Paxos UPDATE with side {msg['side']!r}; expected BUY or SELL"
                raise ProtocolError(err)
            change = (side, spot(msg["price"]), spot(msg["amount"]))
            self.apply_changes(book, (change,), recv_ns, None)
        elif kind == "SNAPSHOT":
            symbol = msg["market"]
            if symbol not in self.books:
                return
            bids, asks = self._parts
            bids += amount_levels(msg.get("bids") or [])
            asks += amount_levels(msg.get("asks") or [])
            if msg.get("final_snapshot", True):
                self._parts = ([], [])
                self.apply_snapshot(symbol, bids, asks, recv_ns, None)
