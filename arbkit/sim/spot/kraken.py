"""Kraken spot market data, as the world serves it.

Wire format: Kraken WS v2 (``wss://ws.kraken.com/v2``, docs as of 2023-2026, reference §2.2):
``status`` frame on connect; ``{"method":"subscribe","params":{"channel":"book",...}}`` with
depth 10/25/100/500/1000 -> ack, ``snapshot`` then ``update`` frames whose ``checksum`` is the
CRC32 of the top 10 asks then top 10 bids of the client's book, each level as its printed
price and qty with "." removed and leading zeros stripped. Prices are JSON numbers printed at
BTC/USD's fixed precision (1 decimal), qtys at 8 decimals, so a client must parse them as
exact decimals. The client truncates its book to the subscribed depth: a level pushed out of
scope is *not* deleted on the wire, a level coming into scope is sent. ``heartbeat`` frames
when the connection is otherwise idle for a second; ``ping`` -> ``pong``.
REST: ``GET /0/public/Depth?pair=XBTUSD&count=N`` (count <= 500) in the shape of the
2025-11-11 capture (price with 5 decimals, volume trimmed, integer timestamp).
"""

from __future__ import annotations

import zlib

from aiohttp import web

from arbkit.core.book import ASK, BID, Level
from arbkit.sim.spot.book import Change, TopView
from arbkit.sim.spot.server import (
    Conn,
    Handler,
    Json,
    VenueServer,
    dict_field,
    dumps,
    query_int,
)
from arbkit.sim.spot.wire import fixed, rfc3339, trim

SYMBOL = "BTC/USD"
DEPTHS = (10, 25, 100, 500, 1000)
PRICE_DP = 1
QTY_DP = 8
_PRICE_UNIT = 10 ** (8 - PRICE_DP)
REST_PAIRS = ("XBTUSD", "XXBTZUSD", "BTCUSD", "BTC/USD", "XBT/USD")


def checksum(asks: list[Level], bids: list[Level]) -> int:
    """Kraken v2 CRC32 over the top 10 asks (ascending) then top 10 bids (descending).

    Each level contributes its printed price and qty with "." removed and leading zeros
    stripped: for prices at 1 decimal and qtys at 8 that is exactly the integers
    ``price_e8 // 10**7`` and ``qty_e8`` written in decimal.
    """
    text = "".join(f"{p // _PRICE_UNIT}{q}" for p, q in asks[:10] + bids[:10])
    return zlib.crc32(text.encode())


def _levels(levels: list[Level]) -> str:
    return ",".join(f'{{"price":{fixed(p, PRICE_DP)},"qty":{fixed(q, QTY_DP)}}}' for p, q in levels)


def book_frame(kind: str, bids: list[Level], asks: list[Level], crc: int, ts_ns: int) -> str:
    """A ``book`` snapshot/update frame (numbers printed by hand at fixed precision)."""
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{SYMBOL}",'
        f'"bids":[{_levels(bids)}],"asks":[{_levels(asks)}],'
        f'"checksum":{crc},"timestamp":"{rfc3339(ts_ns, 6)}"}}]}}'
    )


class KrakenServer(VenueServer):
    """Kraken WS v2 ``book`` with checksums and depth truncation; REST ``Depth``."""

    published_depth = max(DEPTHS)

    name = "kraken"
    symbol = SYMBOL

    def init_state(self) -> None:
        self.views: dict[int, TopView] = {}  # one per subscribed depth
        self.connection_ids = 0

    def ws_paths(self) -> list[str]:
        return ["/v2"]

    def rest_paths(self) -> list[tuple[str, Handler]]:
        return [("/0/public/Depth", self.depth)]

    def endpoint_paths(self) -> tuple[str, str]:
        return "/v2", "/0/public"

    def on_open(self, conn: Conn) -> None:
        self.connection_ids += 1
        status = {
            "version": "2.0.10",
            "system": "online",
            "api_version": "v2",
            "connection_id": 14_000_000_000_000_000_000 + self.connection_ids,
        }
        conn.send(dumps({"channel": "status", "type": "update", "data": [status]}))

    def _reply(self, conn: Conn, msg: Json, result: Json | None, error: str | None) -> None:
        now = rfc3339(self.now_ns(), 6)
        out: Json = {"method": msg.get("method")}
        if error is None:
            out.update(result=result, success=True)
        else:
            out.update(error=error, success=False)
        out.update(time_in=now, time_out=now)
        if "req_id" in msg:
            out["req_id"] = msg["req_id"]
        conn.send(dumps(out))

    def on_message(self, conn: Conn, msg: Json) -> None:
        method = msg.get("method")
        params = dict_field(msg, "params")
        if method == "ping":
            out: Json = {"method": "pong"}
            if "req_id" in msg:
                out["req_id"] = msg["req_id"]
            now = rfc3339(self.now_ns(), 6)
            out.update(time_in=now, time_out=now)
            conn.send(dumps(out))
            return
        if params is None:
            self._reply(conn, msg, None, "params must be an object")
            return
        if method not in ("subscribe", "unsubscribe") or params.get("channel") != "book":
            self._reply(conn, msg, None, f"Unsupported request {method!r}")
            return
        symbols = params.get("symbol") or []
        depth = params.get("depth", 10)
        if symbols != [SYMBOL]:
            self._reply(conn, msg, None, f"Currency pair not supported {symbols}")
            return
        if depth not in DEPTHS:
            self._reply(conn, msg, None, "Invalid depth")
            return
        result = {"channel": "book", "depth": depth, "symbol": SYMBOL}
        if method == "unsubscribe":
            conn.subs.pop("book", None)
            self._reply(conn, msg, result, None)
            return
        snapshot = params.get("snapshot", True)
        self._reply(conn, msg, {**result, "snapshot": snapshot}, None)
        conn.subs["book"] = depth
        view = self.views.get(depth)
        if view is None:
            view = self.views[depth] = TopView(self.book, depth)
        if snapshot:
            bids, asks = self.book.levels(BID, depth), self.book.levels(ASK, depth)
            frame = book_frame("snapshot", bids, asks, checksum(asks, bids), self.book.updated_ns)
            conn.send(frame)

    def publish(self, changes: list[Change], now_ns: int) -> None:
        for depth, view in list(self.views.items()):
            subs = [c for c in self.conns if c.subs.get("book") == depth]
            if not subs:
                del self.views[depth]
                continue
            inside, _ = view.advance()  # levels that fell out of scope are not sent
            if not inside:
                continue
            bids = [(p, s) for side, p, s, _ in inside if side == BID]
            asks = [(p, s) for side, p, s, _ in inside if side == ASK]
            top_bids = self.book.levels(BID, 10)
            top_asks = self.book.levels(ASK, 10)
            crc = checksum(top_asks, top_bids)
            frame = book_frame("update", bids, asks, crc, now_ns)
            for conn in subs:
                if top_asks and conn.fault("corrupt"):
                    conn.send(book_frame("update", bids, _corrupt(asks, top_asks[0]), crc, now_ns))
                else:
                    conn.send_data(frame)

    def on_tick(self, now_ns: int) -> None:
        super().on_tick(now_ns)
        for conn in list(self.conns):
            if "book" in conn.subs and now_ns - conn.last_sent_ns >= 1_000_000_000:
                conn.send('{"channel":"heartbeat"}')

    async def depth(self, request: web.Request) -> web.Response:
        pair = request.query.get("pair", "")
        if pair not in REST_PAIRS:
            return self.json({"error": ["EQuery:Unknown asset pair"]})
        count = min(query_int(request, "count", 100, 0, 2**31), 500) or 100
        ts = self.book.updated_ns // 1_000_000_000

        def rows(levels: list[Level]) -> list[list[object]]:
            return [[fixed(p, 5), trim(q), ts] for p, q in levels]

        book = {
            "asks": rows(self.book.levels(ASK, count)),
            "bids": rows(self.book.levels(BID, count)),
        }
        return self.json({"error": [], "result": {"XXBTZUSD": book}})


def _corrupt(asks: list[Level], best: Level) -> list[Level]:
    """The update's asks with the best ask's qty off by one lot (the checksum will not match)."""
    wrong = (best[0], best[1] + 1)
    return [wrong, *(lv for lv in asks if lv[0] != best[0])]
