"""Gemini market data, as the world serves it (v1 and v2 WS feeds, v1 REST book).

Wire formats (reference §2.4):
- v1 ``/v1/marketdata/BTCUSD?heartbeat=true`` (asyncapi examples): one symbol per socket, no
  subscribe message; the first ``update`` holds the whole book as ``change`` events with
  ``reason: "initial"``; then ``update`` frames with ``eventId``, ``timestamp`` (s),
  ``timestampms`` and ``change`` events (``remaining`` = new absolute size, ``delta``,
  ``reason`` place/cancel). ``socket_sequence`` is zero-based and counts every frame of the
  socket, heartbeats (every 5 s when ``heartbeat=true``) included. Prices with 2 decimals.
- v2 ``/v2/marketdata`` (captured 2026-08-09): subscribe ``l2``; the first ``l2_updates``
  per symbol is the whole book plus ``trades`` and ``auction_events`` (the world has no
  trades: empty lists); later ``l2_updates`` carry ``changes`` ``[side, price, qty]``; keys
  alphabetical and numbers like ``"65206.0"`` as captured; ``heartbeat`` every 5 s; no
  sequence numbers or timestamps on book frames.
REST: ``GET /v1/book/btcusd?limit_bids=0&limit_asks=0`` (0 = all, default 50).
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
    dumps,
    list_field,
    query_int,
)
from arbkit.sim.spot.wire import fixed, trim, trim1

SYMBOL = "BTCUSD"
HEARTBEAT_NS = 5_000_000_000
_V2_SIDE = {BID: "buy", ASK: "sell"}


def _delta(new: int, old: int) -> str:
    d = new - old
    return trim(d) if d >= 0 else "-" + trim(-d)


def v1_update(changes: list[Change], seq: int, event_id: int, now_ns: int | None) -> str:
    """A v1 ``update``; ``now_ns`` None makes it the initial book (no timestamps)."""
    ms = None if now_ns is None else now_ns // 1_000_000
    events: list[Json] = []
    for side, price, size, old in changes:
        if ms is None:
            events.append(
                {
                    "type": "change",
                    "reason": "initial",
                    "price": fixed(price, 2),
                    "delta": trim(size),
                    "remaining": trim(size),
                    "side": side,
                }
            )
        else:
            events.append(
                {
                    "type": "change",
                    "side": side,
                    "price": fixed(price, 2),
                    "remaining": trim(size),
                    "delta": _delta(size, old),
                    "reason": "place" if size > old else "cancel",
                }
            )
    frame: Json = {"type": "update", "eventId": event_id}
    if ms is not None:
        frame.update(timestamp=ms // 1000, timestampms=ms)
    frame.update(socket_sequence=seq, events=events)
    return dumps(frame)


def v2_changes(changes: list[Change]) -> list[list[str]]:
    return [[_V2_SIDE[side], trim1(price), trim1(size)] for side, price, size, _ in changes]


class GeminiServer(VenueServer):
    """Gemini v1 and v2 market-data sockets and the v1 REST book."""

    name = "gemini"
    symbol = SYMBOL

    def init_state(self) -> None:
        self.event_id = 1_764_551_741_000_000 + self.rng.randrange(1_000_000)
        self.next_heartbeat_ns = 0

    def ws_paths(self) -> list[str]:
        return ["/v1/marketdata/{symbol}", "/v2/marketdata", "/v2/marketdata/"]

    def rest_paths(self) -> list[tuple[str, Handler]]:
        return [("/v1/book/{symbol}", self.book_rest)]

    def endpoint_paths(self) -> tuple[str, str]:
        return "/v1/marketdata", "/v1"

    def _full(self) -> list[Change]:
        out = [(BID, p, s, 0) for p, s in self.book.levels(BID)]
        return out + [(ASK, p, s, 0) for p, s in self.book.levels(ASK)]

    async def handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        symbol = request.match_info.get("symbol")
        if symbol is not None and symbol.upper() != SYMBOL:
            raise web.HTTPBadRequest(text=f"unknown symbol {symbol}")
        return await super().handle_ws(request)

    def on_open(self, conn: Conn) -> None:
        if "symbol" not in conn.request.match_info:
            return  # v2 waits for a subscribe message
        conn.subs["v1"] = True
        conn.subs["heartbeat"] = conn.request.query.get("heartbeat", "false") == "true"
        self.event_id += 1
        conn.send_seq(lambda seq: v1_update(self._full(), seq, self.event_id, None))

    def on_message(self, conn: Conn, msg: Json) -> None:
        if "v1" in conn.subs:
            return  # the v1 feed takes no requests
        subs = list_field(msg, "subscriptions")
        if (
            msg.get("type") != "subscribe"
            or subs is None
            or not all(isinstance(s, dict) and list_field(s, "symbols") is not None for s in subs)
        ):
            conn.send(dumps({"result": "error", "reason": "InvalidJson", "message": "bad request"}))
            return
        for sub in subs:
            if sub.get("name") == "l2" and SYMBOL in (sub.get("symbols") or []):
                conn.subs["l2"] = True
                first = {
                    "auction_events": [],
                    "changes": v2_changes(self._full()),
                    "symbol": SYMBOL,
                    "trades": [],
                    "type": "l2_updates",
                }
                conn.send(dumps(first))

    def publish(self, changes: list[Change], now_ns: int) -> None:
        self.event_id += 1 + self.rng.randrange(40)
        v2 = None
        for conn in list(self.conns):
            if "v1" in conn.subs:
                conn.send_seq(lambda seq: v1_update(changes, seq, self.event_id, now_ns))
            elif "l2" in conn.subs:
                if v2 is None:
                    v2 = dumps(
                        {"changes": v2_changes(changes), "symbol": SYMBOL, "type": "l2_updates"}
                    )
                conn.send_data(v2)

    def on_tick(self, now_ns: int) -> None:
        super().on_tick(now_ns)
        if now_ns < self.next_heartbeat_ns:
            return
        self.next_heartbeat_ns = now_ns + HEARTBEAT_NS
        v2 = dumps({"timestamp": now_ns // 1_000_000, "type": "heartbeat"})
        for conn in list(self.conns):
            if conn.subs.get("heartbeat"):
                conn.send_seq(lambda seq: dumps({"type": "heartbeat", "socket_sequence": seq}))
            elif "l2" in conn.subs:
                conn.send(v2)

    async def book_rest(self, request: web.Request) -> web.Response:
        if request.match_info["symbol"].upper() != SYMBOL:
            return web.json_response(
                {"result": "error", "reason": "InvalidSymbol", "message": "unknown symbol"},
                status=400,
            )
        ts = str(self.book.updated_ns // 1_000_000_000)

        def rows(side: str, key: str) -> list[dict[str, str]]:
            limit = query_int(request, key, 50, 0, 2**31)
            levels: list[Level] = self.book.levels(side, limit or None)
            return [{"price": fixed(p, 2), "amount": trim(q), "timestamp": ts} for p, q in levels]

        return self.json({"bids": rows(BID, "limit_bids"), "asks": rows(ASK, "limit_asks")})
