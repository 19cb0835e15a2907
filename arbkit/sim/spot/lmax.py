"""LMAX Digital public market data, as the world serves it.

Wire format (reference §2.7, secondary sources): socket ``/v1/web-socket``, subscribe
``{"type":"SUBSCRIBE","channels":[{"name":"ORDER_BOOK","instruments":["btc-usd"]}]}`` ->
``{"type":"SUBSCRIPTIONS","channels":[...]}``; unknown requests -> ``{"type":"ERROR",
"error_code","error_message"}``; the public feed is throttled to about one book a second.
UNVERIFIED (no capture or primary doc seen): the ``ORDER_BOOK`` payload — modelled as the
full top-``TOP`` book each time, ``{"type":"ORDER_BOOK","instrument_id","timestamp",
"status":"OPEN","bids":[{"price","quantity"}],"asks":[...]}`` — its depth, and the REST
``/v1/orderbook/btc-usd`` body (the same fields without ``type``). No sequence numbers.
"""

from __future__ import annotations

from aiohttp import web

from arbkit.core.book import ASK, BID, BookView, Level
from arbkit.sim.spot.book import Change
from arbkit.sim.spot.server import (
    Conn,
    Handler,
    Json,
    VenueServer,
    dumps,
    list_field,
)
from arbkit.sim.spot.wire import fixed, rfc3339

INSTRUMENT = "btc-usd"
TOP = 50


def book_body(bids: list[Level], asks: list[Level], ts_ns: int) -> Json:
    def rows(levels: list[Level]) -> list[dict[str, str]]:
        return [{"price": fixed(p, 2), "quantity": fixed(q, 4)} for p, q in levels]

    return {
        "instrument_id": INSTRUMENT,
        "timestamp": rfc3339(ts_ns, 3),
        "status": "OPEN",
        "bids": rows(bids),
        "asks": rows(asks),
    }


class LmaxServer(VenueServer):
    """LMAX public ``ORDER_BOOK`` channel (throttled full books) and REST order book."""

    published_depth = TOP

    name = "lmax"
    symbol = INSTRUMENT

    def init_state(self) -> None:
        self.min_interval_ns = 1_000_000_000
        self.last_book_ns = 0
        self.dirty = False
        self.published: tuple[BookView, str] | None = None
        """The last book published, as a view and as the frame sent."""

    def _last_book(self, now_ns: int) -> tuple[BookView, str]:
        """The last book published (the current one before the first publication): a new
        subscriber gets it first, and every subscriber holds it until the next one."""
        if self.published is None:
            self.published = (self.book.view(TOP), self._frame(now_ns))
        return self.published

    def published_view(self) -> BookView:
        return self._last_book(self.now_ns())[0]

    def ws_paths(self) -> list[str]:
        return ["/v1/web-socket"]

    def rest_paths(self) -> list[tuple[str, Handler]]:
        return [("/v1/orderbook/{instrument}", self.orderbook)]

    def endpoint_paths(self) -> tuple[str, str]:
        return "/v1/web-socket", "/v1"

    def _frame(self, now_ns: int) -> str:
        body = book_body(self.book.levels(BID, TOP), self.book.levels(ASK, TOP), now_ns)
        return dumps({"type": "ORDER_BOOK", **body})

    def on_message(self, conn: Conn, msg: Json) -> None:
        channels = list_field(msg, "channels")
        ok = (
            channels is not None
            and msg.get("type") in ("SUBSCRIBE", "UNSUBSCRIBE")
            and all(
                isinstance(ch, dict)
                and ch.get("name") == "ORDER_BOOK"
                and ch.get("instruments") == [INSTRUMENT]
                for ch in channels
            )
        )
        if not ok or not channels:
            error = {
                "type": "ERROR",
                "error_code": "INVALID_REQUEST",
                "error_message": "bad request",
            }
            conn.send(dumps(error))
            return
        if msg["type"] == "UNSUBSCRIBE":
            conn.subs.pop("book", None)
        else:
            conn.subs["book"] = True
        active = [{"name": "ORDER_BOOK", "instruments": [INSTRUMENT]}] if conn.subs else []
        conn.send(dumps({"type": "SUBSCRIPTIONS", "channels": active}))
        if msg["type"] == "SUBSCRIBE":
            conn.send(self._last_book(self.now_ns())[1])

    def publish(self, changes: list[Change], now_ns: int) -> None:
        self.dirty = True
        self._flush(now_ns)

    def on_tick(self, now_ns: int) -> None:
        super().on_tick(now_ns)
        self._flush(now_ns)

    def _flush(self, now_ns: int) -> None:
        if not self.dirty or now_ns - self.last_book_ns < self.min_interval_ns:
            return
        self.dirty = False
        self.last_book_ns = now_ns
        self.published = (self.book.view(TOP), self._frame(now_ns))
        frame = self.published[1]
        for conn in list(self.conns):
            if "book" in conn.subs:
                conn.send_data(frame)

    async def orderbook(self, request: web.Request) -> web.Response:
        if request.match_info["instrument"] != INSTRUMENT:
            return web.json_response({"error_code": "NOT_FOUND"}, status=404)
        now = self.now_ns()
        return self.json(book_body(self.book.levels(BID, TOP), self.book.levels(ASK, TOP), now))
