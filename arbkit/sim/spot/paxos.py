"""Paxos (itBit) market data, as the world serves it.

Wire format (reference §2.8, single secondary source marked UNVERIFIED by its author):
socket ``/marketdata/BTCUSD`` (market chosen by path, no subscribe message, native WS
ping/pong); on connect a ``{"type":"SNAPSHOT","market":"BTCUSD","bids":[{"price","amount"}],
"asks":[...],"final_snapshot":true}``, then one ``{"type":"UPDATE","market","side":"BUY"|
"SELL","price","amount"}`` per changed level (absolute amount, "0" deletes). No sequence
numbers and no timestamps, so a lost update is only visible as a wrong book.
UNVERIFIED: everything above beyond the reference's description; the snapshot is sent as
one frame (the reference says it may be split until ``final_snapshot``).
REST: ``GET /v2/markets/BTCUSD/order-book`` -> ``{"asks":[{"price","amount"}],"bids":[...]}``.
"""

from __future__ import annotations

from aiohttp import web

from arbkit.core.book import ASK, BID, Level
from arbkit.sim.spot.book import Change
from arbkit.sim.spot.server import Conn, Handler, VenueServer, dumps
from arbkit.sim.spot.wire import trim

MARKET = "BTCUSD"
_SIDE = {BID: "BUY", ASK: "SELL"}


def _rows(levels: list[Level]) -> list[dict[str, str]]:
    return [{"price": trim(p), "amount": trim(q)} for p, q in levels]


class PaxosServer(VenueServer):
    """Paxos ``/marketdata/{market}`` socket and the v2 REST order book."""

    name = "paxos"
    symbol = MARKET

    def ws_paths(self) -> list[str]:
        return ["/marketdata/{market}"]

    def rest_paths(self) -> list[tuple[str, Handler]]:
        return [("/v2/markets/{market}/order-book", self.order_book)]

    def endpoint_paths(self) -> tuple[str, str]:
        return "/marketdata", "/v2"

    async def handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        if request.match_info["market"] != MARKET:
            raise web.HTTPNotFound(text=f"unknown market {request.match_info['market']}")
        return await super().handle_ws(request)

    def on_open(self, conn: Conn) -> None:
        conn.subs["book"] = True
        snapshot = {
            "type": "SNAPSHOT",
            "market": MARKET,
            "bids": _rows(self.book.levels(BID)),
            "asks": _rows(self.book.levels(ASK)),
            "final_snapshot": True,
        }
        conn.send(dumps(snapshot))

    def publish(self, changes: list[Change], now_ns: int) -> None:
        frames = [
            dumps(
                {
                    "type": "UPDATE",
                    "market": MARKET,
                    "side": _SIDE[side],
                    "price": trim(p),
                    "amount": trim(s),
                }
            )
            for side, p, s, _ in changes
        ]
        for conn in list(self.conns):
            for frame in frames:
                conn.send_data(frame)

    async def order_book(self, request: web.Request) -> web.Response:
        if request.match_info["market"] != MARKET:
            return web.json_response({"title": "Not Found", "status": 404}, status=404)
        return self.json(
            {"asks": _rows(self.book.levels(ASK)), "bids": _rows(self.book.levels(BID))}
        )
