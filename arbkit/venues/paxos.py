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
amounts are absolute. Paxos sends **no sequence numbers and no timestamps**, so ``exch_ns`` is
always null and a lost update cannot be seen on the socket (only a dropped socket or an
unreadable frame is, and both lead to a fresh snapshot through a reconnect).

Silent divergence is bounded by reconciling with the REST book (``GET /v2/markets/{market}/
order-book``, the same reference section) `FIRST_CHECK_S` after each connect, then every
``reconcile_every`` seconds, and at once when the book crosses: the reply is held
for `RECONCILE_GRACE_S` (updates in flight on the socket arrive meanwhile) and then compared
level by level, within the price range the reply covers, with the book, skipping levels an
update touched since the request left (their REST value may be older or newer than ours). A
difference left is a lost update: an event ``divergence`` (counter ``divergences``) and a
resync (a reconnect: Paxos has no snapshot request).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import orjson

from arbkit.core.book import ASK, BID, BookSide, Level
from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError, ProtocolError
from arbkit.core.sink import Sink
from arbkit.venues.spot import HttpRequest, SpotFeed, register_feed, spot

_SIDES = {"BUY": BID, "SELL": ASK}

RECONCILE_EVERY_S = 5.0
"""Default seconds between REST reconciliations (bounds how long a lost update can hide)."""
RECONCILE_GRACE_S = 1.0
"""How long a REST reply waits before the comparison, so updates in flight arrive (the world
delays Paxos frames 250 ms)."""
FIRST_CHECK_S = 2.0
"""Seconds after a (re)connect before the first check (connections may be short-lived)."""
RECONCILE = "reconcile"
"""`HttpRequest.purpose` of a reconciliation GET."""


def amount_levels(rows: list[dict[str, str]]) -> list[Level]:
    """``[{"price", "amount"}]`` rows as exact levels."""
    return [(spot(r["price"]), spot(r["amount"])) for r in rows]


@register_feed
class PaxosFeed(SpotFeed):
    """Paxos ``/marketdata/{market}`` snapshot + absolute updates (no integrity checks exist)."""

    venue: ClassVar[str] = "paxos"
    default_silence_timeout: ClassVar[float] = 60.0
    resync_on_unreadable: ClassVar[bool] = True

    def __init__(
        self,
        endpoint: Endpoint,
        sink: Sink,
        *,
        reconcile_every: float = RECONCILE_EVERY_S,
        **options: Any,
    ) -> None:
        """``reconcile_every``: seconds between REST checks (``math.inf``: never)."""
        super().__init__(endpoint, sink, **options)
        if len(self.symbols) != 1:
            msg = (
                f"Paxos serves one market per connection, got {list(self.symbols)}: "
                "run one PaxosFeed per market"
            )
            raise ConfigError(msg)
        self._parts: tuple[list[Level], list[Level]] = ([], [])
        """Levels of a snapshot split over frames, until ``final_snapshot``."""
        self.reconcile_ns = None if math.isinf(reconcile_every) else int(reconcile_every * 1e9)
        self._next_check = 0
        self._asked_ns: int | None = None
        """When the reconciliation GET in flight was asked for."""
        self._reply: tuple[int, list[Level], list[Level]] | None = None
        """A REST reply waiting out its grace: (compare at, bids, asks)."""
        self._touched: dict[tuple[str, int], int] = {}
        """(side, price) -> last update time, kept only while a check is under way."""

    def subscribe(self, now_ns: int) -> None:
        self._parts = ([], [])  # the URL path is the subscription
        self._asked_ns = self._reply = None
        self._touched.clear()
        self._next_check = now_ns + int(FIRST_CHECK_S * 1e9)

    def timer(self, now_ns: int) -> None:
        """Ask for the REST book when a check is due; compare a reply whose grace is over."""
        if self.reconcile_ns is None:
            return
        reply = self._reply
        if reply is not None:
            if now_ns >= reply[0]:
                self._compare(now_ns, reply[1], reply[2])
        elif self._asked_ns is None:
            symbol = self.symbols[0]
            book = self.books[symbol]
            # a crossed book is a lost update showing itself: check now, not at the next slot
            if book.valid and (now_ns >= self._next_check or book.crossed):
                self._asked_ns = now_ns
                self.request_http(HttpRequest(self.urls.rest, symbol, self.conn_id, RECONCILE))

    def on_http_response(self, request: HttpRequest, status: int, text: str, recv_ns: int) -> None:
        """A reconciliation reply: held for `RECONCILE_GRACE_S`, then compared."""
        if (
            request.purpose != RECONCILE
            or request.conn_id != self.conn_id
            or self._asked_ns is None
        ):
            return
        if status != 200:
            self.event("error", request.symbol, f"REST book HTTP {status}: {text[:200]}", recv_ns)
            self._end_check(recv_ns)
            return
        msg = orjson.loads(text)
        bids, asks = amount_levels(msg["bids"]), amount_levels(msg["asks"])
        self._reply = (recv_ns + int(RECONCILE_GRACE_S * 1e9), bids, asks)

    def _end_check(self, now_ns: int) -> None:
        self._asked_ns = self._reply = None
        self._touched.clear()
        self._next_check = now_ns + (self.reconcile_ns or 0)

    def _compare(self, now_ns: int, bids: list[Level], asks: list[Level]) -> None:
        asked = self._asked_ns or 0
        touched = self._touched
        symbol = self.symbols[0]
        book = self.books[symbol]
        diffs: list[tuple[str, int, int, int]] = []
        if book.valid:  # else a resync is already under way
            for side, theirs, ours in ((BID, bids, book.bids), (ASK, asks, book.asks)):
                diffs += [
                    d
                    for d in _level_diffs(side, dict(theirs), ours)
                    if touched.get(d[:2], 0) < asked
                ]
        self._end_check(now_ns)
        if diffs:
            side, price, mine, rest = diffs[0]
            detail = (
                f"{len(diffs)} levels differ from the REST book (first: {side} {price}: "
                f"ours {mine}, REST {rest}; e8)"
            )
            self.event("divergence", symbol, detail, now_ns, rest, mine)
            self.resync(symbol, now_ns, "diverged from the REST book")

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
            price = spot(msg["price"])
            self.apply_changes(book, ((side, price, spot(msg["amount"])),), recv_ns, None)
            if self._asked_ns is not None:
                self._touched[side, price] = recv_ns
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


def _level_diffs(
    side: str, theirs: dict[int, int], ours: BookSide
) -> list[tuple[str, int, int, int]]:
    """``(side, price, our size, their size)`` wherever the sizes differ, within the price
    range ``theirs`` covers (a depth-limited reply says nothing of deeper levels)."""
    if not theirs:
        return [(side, p, s, 0) for p, s in ours.top()]
    bound = min(theirs) if side == BID else max(theirs)
    mine = {p: s for p, s in ours.top() if (p >= bound if side == BID else p <= bound)}
    return [
        (side, p, mine.get(p, 0), theirs.get(p, 0))
        for p in sorted(theirs.keys() | mine.keys())
        if mine.get(p, 0) != theirs.get(p, 0)
    ]
