"""Coinbase Advanced Trade market data, as the world serves it.

Wire format: Advanced Trade WS (``wss://advanced-trade-ws.coinbase.com``) as documented and
as captured live on 2026-08-09 (reference §2.1, fixtures/real/coinbase): subscribe to
``level2`` -> channel ``l2_data`` with one ``snapshot`` then ``update`` events, sides
``bid``/``offer``, ``new_quantity`` absolute ("0" deletes); ``heartbeats`` channel once a
second; every frame of a connection carries ``sequence_num``, counted per connection across
all channels; envelope ``timestamp`` with 9 fractional digits, ``event_time`` with trailing
zeros trimmed; no ``client_id`` key (as captured). As captured, the snapshot comes before the
``subscriptions`` frame. Clients that do not subscribe within 5 s are disconnected.
REST: ``GET /api/v3/brokerage/market/product_book`` in the shape of the 2026-04-07 capture.
"""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from arbkit.core.book import ASK, BID
from arbkit.core.fixed import SPOT_DIGITS, to_decimal
from arbkit.sim.spot.book import Change
from arbkit.sim.spot.server import (
    Conn,
    Handler,
    Json,
    VenueServer,
    dumps,
    query_int,
)
from arbkit.sim.spot.wire import rfc3339, trim

PRODUCT = "BTC-USD"
CHANNELS = ("level2", "heartbeats")
SUBSCRIBE_DEADLINE_NS = 5_000_000_000
_SIDE = {BID: "bid", ASK: "offer"}


def envelope(channel: str, seq: int, now_ns: int, events: list[Json]) -> str:
    """One Advanced Trade frame."""
    return dumps(
        {"channel": channel, "timestamp": rfc3339(now_ns), "sequence_num": seq, "events": events}
    )


def l2_event(kind: str, changes: list[Change], event_ns: int) -> Json:
    """An ``l2_data`` event (``snapshot`` or ``update``) for the given levels."""
    when = rfc3339(event_ns, 6, strip=True)
    return {
        "type": kind,
        "product_id": PRODUCT,
        "updates": [
            {
                "side": _SIDE[side],
                "event_time": when,
                "price_level": trim(price),
                "new_quantity": trim(size),
            }
            for side, price, size, _ in changes
        ],
    }


def heartbeat_event(now_ns: int, started_ns: int, counter: int) -> Json:
    """A ``heartbeats`` event; ``current_time`` is Go's time.Time text, as captured."""
    text = rfc3339(now_ns).replace("T", " ").replace("Z", "")
    mono = (now_ns - started_ns) / 1e9
    return {"current_time": f"{text} +0000 UTC m=+{mono:.9f}", "heartbeat_counter": counter}


class CoinbaseServer(VenueServer):
    """Advanced Trade ``level2`` + ``heartbeats`` over WS, ``product_book`` over REST."""

    name = "coinbase"
    symbol = PRODUCT

    def init_state(self) -> None:
        self.started_ns = self.now_ns()
        self.heartbeat_counter = 0
        self.next_heartbeat_ns = 0

    def ws_paths(self) -> list[str]:
        return ["/ws"]

    def rest_paths(self) -> list[tuple[str, Handler]]:
        return [("/api/v3/brokerage/market/product_book", self.product_book)]

    def endpoint_paths(self) -> tuple[str, str]:
        return "/ws", "/api/v3/brokerage"

    def _subscriptions(self, conn: Conn, now_ns: int) -> None:
        subs = {ch: ([PRODUCT] if ch == "level2" else ["heartbeats"]) for ch in sorted(conn.subs)}
        conn.send_seq(lambda seq: envelope("subscriptions", seq, now_ns, [{"subscriptions": subs}]))

    def on_message(self, conn: Conn, msg: Json) -> None:
        now = self.now_ns()
        kind, channel = msg.get("type"), msg.get("channel")
        products = msg.get("product_ids") or []
        if kind not in ("subscribe", "unsubscribe") or channel not in CHANNELS:
            conn.send(dumps({"type": "error", "message": f"unsupported request {kind}/{channel}"}))
            return
        if channel == "level2" and products != [PRODUCT]:
            conn.send(dumps({"type": "error", "message": "Failure to subscribe: product_ids"}))
            return
        if kind == "unsubscribe":
            conn.subs.pop(channel, None)
        elif channel not in conn.subs:
            conn.subs[channel] = True
            if channel == "level2":
                snap = [(BID, p, s, 0) for p, s in self.book.levels(BID)]
                snap += [(ASK, p, s, 0) for p, s in self.book.levels(ASK)]
                event = l2_event("snapshot", snap, self.book.updated_ns)
                conn.send_seq(lambda seq: envelope("l2_data", seq, now, [event]))
        self._subscriptions(conn, now)

    def publish(self, changes: list[Change], now_ns: int) -> None:
        event = l2_event("update", changes, now_ns)
        for conn in list(self.conns):
            if "level2" in conn.subs:
                conn.send_seq(lambda seq: envelope("l2_data", seq, now_ns, [event]))

    def on_tick(self, now_ns: int) -> None:
        super().on_tick(now_ns)
        for conn in list(self.conns):
            if not conn.subs and now_ns - conn.opened_ns > SUBSCRIBE_DEADLINE_NS:
                self.drop(conn)
        if now_ns < self.next_heartbeat_ns:
            return
        self.next_heartbeat_ns = now_ns + 1_000_000_000
        self.heartbeat_counter += 1
        event = heartbeat_event(now_ns, self.started_ns, self.heartbeat_counter)
        for conn in list(self.conns):
            if "heartbeats" in conn.subs:
                conn.send_seq(lambda seq: envelope("heartbeats", seq, now_ns, [event]))

    async def product_book(self, request: web.Request) -> web.Response:
        if request.query.get("product_id") != PRODUCT:
            return web.json_response(
                {"error": "NOT_FOUND", "message": "ProductID is invalid"}, status=404
            )
        limit = query_int(request, "limit", 0, 0, 2**31) or None
        bids = self.book.levels(BID, limit)
        asks = self.book.levels(ASK, limit)
        body: Json = {
            "pricebook": {
                "product_id": PRODUCT,
                "bids": [{"price": trim(p), "size": trim(s)} for p, s in bids],
                "asks": [{"price": trim(p), "size": trim(s)} for p, s in asks],
                "time": rfc3339(self.book.updated_ns, 6, strip=True),
            }
        }
        if bids and asks:
            bid, ask = to_decimal(bids[0][0], SPOT_DIGITS), to_decimal(asks[0][0], SPOT_DIGITS)
            mid = (bid + ask) / 2
            body["last"] = body["mid_market"] = _plain(mid)
            body["spread_bps"] = _plain(((ask - bid) / mid * 10_000).quantize(Decimal("1e-12")))
            body["spread_absolute"] = _plain(ask - bid)
        return self.json(body)


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
