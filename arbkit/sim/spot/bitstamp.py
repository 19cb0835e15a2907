"""Bitstamp market data, as the world serves it.

Wire format: Bitstamp WS v2 (``wss://ws.bitstamp.net``), per reference §2.3 and the
2022-01-05 capture: ``bts:subscribe`` -> ``bts:subscription_succeeded``;
``order_book_btcusd`` sends the full top-100 book on every change of it (nothing on
subscribe); ``diff_order_book_btcusd`` sends changed levels (amount "0.00000000" deletes);
``data`` carries ``timestamp`` (epoch s) and ``microtimestamp`` (epoch µs, strictly increasing),
prices with 2 decimals and amounts with 8 as in the capture. ``bts:heartbeat`` is answered;
a forced drop first sends ``bts:request_reconnect`` (the venue's maintenance notice) and
closes a second later. No sequence numbers, no checksum.
REST: ``GET /api/v2/order_book/btcusd/`` -> full book with the ``microtimestamp`` of the last
change streamed, so a client can drop buffered diffs at or before it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from arbkit.core.book import ASK, BID, Level
from arbkit.sim.spot.book import Change, TopView
from arbkit.sim.spot.server import Conn, Handler, Json, VenueServer, dumps
from arbkit.sim.spot.wire import fixed

PAIR = "btcusd"
FULL = f"order_book_{PAIR}"
DIFF = f"diff_order_book_{PAIR}"
TOP = 100
RECONNECT_GRACE_S = 1.0


def _rows(levels: list[Level]) -> list[list[str]]:
    return [[fixed(p, 2), fixed(q, 8)] for p, q in levels]


def data_frame(channel: str, bids: list[Level], asks: list[Level], micro: int) -> str:
    """A ``data`` event of an order-book channel."""
    data = {
        "timestamp": str(micro // 1_000_000),
        "microtimestamp": str(micro),
        "bids": _rows(bids),
        "asks": _rows(asks),
    }
    return dumps({"data": data, "channel": channel, "event": "data"})


class BitstampServer(VenueServer):
    """Bitstamp ``order_book``/``diff_order_book`` channels and the REST order book."""

    published_depth = TOP

    name = "bitstamp"
    symbol = PAIR

    def init_state(self) -> None:
        self.micro = self.now_ns() // 1000
        self.top = TopView(self.book, TOP)

    def ws_paths(self) -> list[str]:
        return ["/ws"]

    def rest_paths(self) -> list[tuple[str, Handler]]:
        return [(f"/api/v2/order_book/{PAIR}/", self.order_book)]

    def endpoint_paths(self) -> tuple[str, str]:
        return "/ws", "/api/v2"

    def on_message(self, conn: Conn, msg: Json) -> None:
        event = msg.get("event")
        data = msg.get("data")
        channel = data.get("channel") if isinstance(data, dict) else None
        if event == "bts:heartbeat":
            conn.send(
                dumps({"event": "bts:heartbeat", "channel": "", "data": {"status": "success"}})
            )
        elif event in ("bts:subscribe", "bts:unsubscribe") and channel in (FULL, DIFF):
            if event == "bts:subscribe":
                conn.subs[channel] = True
                reply = "bts:subscription_succeeded"
            else:
                conn.subs.pop(channel, None)
                reply = "bts:unsubscription_succeeded"
            conn.send(dumps({"event": reply, "channel": channel, "data": {}}))
        else:
            self.on_bad_message(conn, "")

    def on_bad_message(self, conn: Conn, text: str) -> None:
        error = {"code": None, "message": "Incorrect JSON format or unknown channel."}
        conn.send(dumps({"event": "bts:error", "channel": "", "data": error}))

    def publish(self, changes: list[Change], now_ns: int) -> None:
        self.micro = max(self.micro + 1, now_ns // 1000)
        inside, _ = self.top.advance()
        diff = full = None
        for conn in list(self.conns):
            if DIFF in conn.subs:
                if diff is None:
                    bids = [(p, s) for side, p, s, _ in changes if side == BID]
                    asks = [(p, s) for side, p, s, _ in changes if side == ASK]
                    diff = data_frame(DIFF, bids, asks, self.micro)
                conn.send_data(diff)
            if FULL in conn.subs and inside:
                if full is None:
                    full = data_frame(
                        FULL, self.book.levels(BID, TOP), self.book.levels(ASK, TOP), self.micro
                    )
                conn.send_data(full)

    def drop(self, conn: Conn) -> None:
        self.request_reconnect(conn)

    def request_reconnect(self, conn: Conn) -> None:
        """Ask the client to reconnect, then close the socket after a grace period."""
        conn.send(dumps({"event": "bts:request_reconnect", "channel": "", "data": ""}))

        async def close_later() -> None:
            await asyncio.sleep(RECONNECT_GRACE_S)
            conn.close()

        self.spawn(close_later())

    def inject(self, fault: str) -> None:
        if fault == "request_reconnect":
            for conn in list(self.conns):
                self.request_reconnect(conn)
        else:
            super().inject(fault)

    async def order_book(self, request: web.Request) -> web.Response:
        body = {
            "timestamp": str(self.micro // 1_000_000),
            "microtimestamp": str(self.micro),
            "bids": _rows(self.book.levels(BID)),
            "asks": _rows(self.book.levels(ASK)),
        }
        return self.json(body)
