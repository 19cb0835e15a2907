"""Bullish market data, as the world serves it.

Wire format (reference §2.6, from tardis-node and ccxt, 2024-2026): the unauthenticated
multi-orderbook socket ``/trading-api/v1/market-data/orderbook`` takes JSON-RPC commands
``{"jsonrpc":"2.0","type":"command","method":"subscribe","id":"1","params":{"topic":
"l2Orderbook","symbol":"BTCUSDC"}}``; book frames are ``{"type":"snapshot"|"update",
"dataType":"V1TALevel2","data":{...}}`` with flat ``[price, qty, price, qty, ...]`` arrays
(price 4 decimals, qty 8), ms-string ``timestamp``/``publishedAtTimestamp``, ISO ``datetime``
and ``sequenceNumberRange`` ``[first, last]``: each update's first is the previous last + 1.
Updates are deltas (qty "0.00000000" deletes), as tardis treats them.
UNVERIFIED (no capture or primary doc seen): the subscribe acknowledgement body, the
``V1TAHeartbeat`` payload fields, the ``keepalivePing`` reply body beyond its
"Keep alive pong" text, and the REST ``/markets/{symbol}/orderbook/hybrid`` field names
(``price``/``priceLevelQuantity``, ``sequenceNumber``) are modelled on Bullish's public API
docs as remembered, not on a capture. ``BTCUSD`` is served from the same book as ``BTCUSDC``.
"""

from __future__ import annotations

from aiohttp import web

from arbkit.core.book import ASK, BID, Level
from arbkit.sim.spot.book import Change
from arbkit.sim.spot.server import (
    Conn,
    Handler,
    Json,
    VenueServer,
    dict_field,
    dumps,
)
from arbkit.sim.spot.wire import fixed, rfc3339

SYMBOLS = ("BTCUSDC", "BTCUSD")
HEARTBEAT_NS = 30_000_000_000


def _flat(levels: list[Level]) -> list[str]:
    out: list[str] = []
    for p, q in levels:
        out += (fixed(p, 4), fixed(q, 8))
    return out


def l2_frame(
    kind: str,
    symbol: str,
    bids: list[Level],
    asks: list[Level],
    rng: tuple[int, int],
    ts_ns: int,
    now_ns: int,
) -> str:
    """A ``V1TALevel2`` snapshot or update."""
    data = {
        "symbol": symbol,
        "bids": _flat(bids),
        "asks": _flat(asks),
        "timestamp": str(ts_ns // 1_000_000),
        "datetime": rfc3339(ts_ns, 3),
        "publishedAtTimestamp": str(now_ns // 1_000_000),
        "sequenceNumberRange": list(rng),
    }
    return dumps({"type": kind, "dataType": "V1TALevel2", "data": data})


def _ok(req_id: object, message: str) -> str:
    result = {"responseCodeName": "OK", "responseCode": "200", "message": message}
    return dumps({"jsonrpc": "2.0", "id": req_id, "result": result})


class BullishServer(VenueServer):
    """Bullish ``l2Orderbook`` JSON-RPC socket and the hybrid REST order book."""

    name = "bullish"
    symbol = SYMBOLS[0]

    def init_state(self) -> None:
        self.sequence = 428_371_450 + self.rng.randrange(1_000_000)
        self.next_heartbeat_ns = 0

    def ws_paths(self) -> list[str]:
        return ["/trading-api/v1/market-data/orderbook"]

    def rest_paths(self) -> list[tuple[str, Handler]]:
        return [("/trading-api/v1/markets/{symbol}/orderbook/hybrid", self.hybrid)]

    def endpoint_paths(self) -> tuple[str, str]:
        return "/trading-api/v1/market-data/orderbook", "/trading-api/v1"

    def on_message(self, conn: Conn, msg: Json) -> None:
        method, req_id = msg.get("method"), msg.get("id")
        params = dict_field(msg, "params")
        if method == "keepalivePing":
            conn.send(_ok(req_id, "Keep alive pong"))
            return
        symbol = None if params is None else params.get("symbol")
        if (
            params is None
            or method != "subscribe"
            or params.get("topic") != "l2Orderbook"
            or symbol not in SYMBOLS
        ):
            error = {"code": -32602, "message": "Invalid params", "data": params}
            conn.send(dumps({"jsonrpc": "2.0", "id": req_id, "error": error}))
            return
        conn.subs["l2"] = symbol
        conn.send(_ok(req_id, "Successfully subscribed"))
        now = self.now_ns()
        book = self.book
        frame = l2_frame(
            "snapshot",
            symbol,
            book.levels(BID),
            book.levels(ASK),
            (self.sequence, self.sequence),
            book.updated_ns,
            now,
        )
        conn.send(frame)

    def publish(self, changes: list[Change], now_ns: int) -> None:
        first = self.sequence + 1
        self.sequence += len(changes)
        bids = [(p, s) for side, p, s, _ in changes if side == BID]
        asks = [(p, s) for side, p, s, _ in changes if side == ASK]
        frames: dict[str, str] = {}
        for conn in list(self.conns):
            symbol = conn.subs.get("l2")
            if symbol is None:
                continue
            if symbol not in frames:
                frames[symbol] = l2_frame(
                    "update", symbol, bids, asks, (first, self.sequence), now_ns, now_ns
                )
            conn.send_data(frames[symbol])

    def on_tick(self, now_ns: int) -> None:
        super().on_tick(now_ns)
        if now_ns < self.next_heartbeat_ns:
            return
        self.next_heartbeat_ns = now_ns + HEARTBEAT_NS
        data = {
            "sequenceNumber": str(self.sequence),
            "createdAtTimestamp": str(now_ns // 1_000_000),
        }
        frame = dumps({"type": "update", "dataType": "V1TAHeartbeat", "data": data})
        for conn in list(self.conns):
            if "l2" in conn.subs:
                conn.send(frame)

    async def hybrid(self, request: web.Request) -> web.Response:
        if request.match_info["symbol"] not in SYMBOLS:
            return web.json_response({"message": "market not found", "errorCode": 6001}, status=404)
        book = self.book

        def rows(levels: list[Level]) -> list[dict[str, str]]:
            return [{"price": fixed(p, 4), "priceLevelQuantity": fixed(q, 8)} for p, q in levels]

        body = {
            "bids": rows(book.levels(BID)),
            "asks": rows(book.levels(ASK)),
            "datetime": rfc3339(book.updated_ns, 3),
            "timestamp": str(book.updated_ns // 1_000_000),
            "sequenceNumber": self.sequence,
        }
        return self.json(body)
