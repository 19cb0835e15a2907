"""LMAX Digital public market data: the ``ORDER_BOOK`` channel of the public data API.

Known (reference/brti-and-venues.md §2.7; LMAX's public-api tutorial spec and client examples,
2021-2026): ``wss://public-data-api.london-digital.lmax.com/v1/web-socket``; subscribe with
``{"type": "SUBSCRIBE", "channels": [{"name": "ORDER_BOOK", "instruments": ["btc-usd"]}]}``;
the reply has ``type: "SUBSCRIPTIONS"``, errors ``type: "ERROR"`` with ``error_code`` and
``error_message``. The public feed is throttled to about one update a second, and the server
closes connections that ping too often, so this client sends no application pings.

**Unverified** (no real capture, no primary text): the ``ORDER_BOOK`` payload. It is taken to
be ``{"type": "ORDER_BOOK", "instrument_id": "btc-usd", "timestamp": RFC3339, "status",
"bids": [{"price", "quantity"}], "asks": [...]}``, every frame a *complete* book of the top
levels (so there is nothing to chain and no gap to detect), and ``timestamp`` the venue time.
How often a quiet book is re-sent is unknown, hence the long silence timeout.
"""

from __future__ import annotations

from typing import ClassVar

import orjson

from arbkit.core.book import Level
from arbkit.core.clock import rfc3339_ns
from arbkit.venues.spot import SpotFeed, register_feed, spot


def quantity_levels(rows: list[dict[str, str]]) -> list[Level]:
    """``[{"price", "quantity"}]`` rows as exact levels."""
    return [(spot(r["price"]), spot(r["quantity"])) for r in rows]


@register_feed
class LmaxFeed(SpotFeed):
    """LMAX public ``ORDER_BOOK``: each frame replaces the book (payload unverified)."""

    venue: ClassVar[str] = "lmax"
    default_silence_timeout: ClassVar[float] = 60.0

    def subscribe(self, now_ns: int) -> None:
        channels = [{"name": "ORDER_BOOK", "instruments": list(self.symbols)}]
        self.send({"type": "SUBSCRIBE", "channels": channels})

    def handle(self, text: str, recv_ns: int) -> None:
        msg = orjson.loads(text)
        kind = msg["type"]
        if kind == "ORDER_BOOK":
            symbol = msg["instrument_id"]
            if symbol not in self.books:
                return
            ts = msg.get("timestamp")
            self.apply_snapshot(
                symbol,
                quantity_levels(msg.get("bids") or []),
                quantity_levels(msg.get("asks") or []),
                recv_ns,
                None if ts is None else rfc3339_ns(ts),
            )
        elif kind == "SUBSCRIPTIONS":
            self.event("subscribed", "", orjson.dumps(msg.get("channels")).decode(), recv_ns)
        elif kind == "ERROR":
            detail = f"{msg.get('error_code')}: {msg.get('error_message')}"
            self.event("error", "", detail, recv_ns)
