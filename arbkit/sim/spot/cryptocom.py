"""Crypto.com Exchange market data, as the world serves it.

Wire format: Exchange API v1 (``wss://stream.crypto.com/exchange/v1/market``, docs as of
2025, reference §2.5): ``subscribe`` to ``book.BTC_USD.{10|50}`` with
``book_subscription_type: SNAPSHOT_AND_UPDATE`` -> ack ``{"id","method","code":0}``, then a
``book`` snapshot (``u``) and ``book.update`` deltas (``update.asks/bids``, ``u`` and ``pu``
= the previous ``u`` of the stream; ``u`` jumps by more than one, as real update ids do).
Levels are ``[price, size, order_count]`` strings; size "0" deletes. The client's book is the
top ``depth`` levels: a level leaving it is sent as a delete, one entering it as an insert.
An empty delta keeps the chain alive after 5 s without changes. ``public/heartbeat`` every
30 s; no ``public/respond-heartbeat`` with the same id within 5 s closes the socket.
Re-subscribing (no unsubscribe needed) gives a fresh snapshot.
REST: ``GET /exchange/v1/public/get-book?instrument_name=BTC_USD&depth=50``.
"""

from __future__ import annotations

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
    list_field,
    query_int,
)
from arbkit.sim.spot.wire import fixed, trim

INSTRUMENT = "BTC_USD"
DEPTHS = (10, 50)
EMPTY_DELTA_NS = 5_000_000_000


def _rows(levels: list[Level]) -> list[list[str]]:
    return [[fixed(p, 2), trim(q), str(1 + q % 7) if q else "0"] for p, q in levels]


def book_frame(depth: int, data: Json) -> str:
    """A ``book`` / ``book.update`` push for ``book.BTC_USD.{depth}``."""
    channel = "book" if "update" not in data else "book.update"
    result = {
        "instrument_name": INSTRUMENT,
        "subscription": f"book.{INSTRUMENT}.{depth}",
        "channel": channel,
        "depth": depth,
        "data": [data],
    }
    return dumps({"id": -1, "method": "subscribe", "code": 0, "result": result})


class _Stream:
    """One depth's delta stream: the top-N view and the last ``u`` sent on it."""

    def __init__(self, view: TopView, u: int, now_ns: int) -> None:
        self.view = view
        self.last_u = u
        self.last_sent_ns = now_ns


class CryptocomServer(VenueServer):
    """Crypto.com ``book.BTC_USD.N`` SNAPSHOT_AND_UPDATE with heartbeats; REST ``get-book``."""

    published_depth = max(DEPTHS)

    name = "cryptocom"
    symbol = INSTRUMENT

    def init_state(self) -> None:
        self.u = 7_845_460_000 + self.rng.randrange(1_000_000)
        self.streams: dict[int, _Stream] = {}
        self.heartbeat_s = 30.0
        self.heartbeat_timeout_s = 5.0
        self.tt_ms = self.book.updated_ns // 1_000_000

    def ws_paths(self) -> list[str]:
        return ["/exchange/v1/market"]

    def rest_paths(self) -> list[tuple[str, Handler]]:
        return [("/exchange/v1/public/get-book", self.get_book)]

    def endpoint_paths(self) -> tuple[str, str]:
        return "/exchange/v1/market", "/exchange/v1/public"

    def on_open(self, conn: Conn) -> None:
        conn.subs["hb_next"] = conn.opened_ns + int(self.heartbeat_s * 1e9)
        conn.subs["hb_wait"] = None  # (id, deadline) of an unanswered heartbeat

    def _snapshot(self, depth: int, now_ns: int, u: int) -> Json:
        return {
            "asks": _rows(self.book.levels(ASK, depth)),
            "bids": _rows(self.book.levels(BID, depth)),
            "t": now_ns // 1_000_000,
            "tt": self.tt_ms,
            "u": u,
        }

    def on_message(self, conn: Conn, msg: Json) -> None:
        method = msg.get("method")
        req_id = msg.get("id")
        if method == "public/respond-heartbeat":
            wait = conn.subs.get("hb_wait")
            if wait is not None and wait[0] == req_id:
                conn.subs["hb_wait"] = None
            return
        if method not in ("subscribe", "unsubscribe"):
            conn.send(dumps({"id": req_id, "method": method, "code": 40101}))
            return
        params = dict_field(msg, "params")
        channels = None if params is None else list_field(params, "channels")
        if channels is None:
            conn.send(dumps({"id": req_id, "method": method, "code": 40003}))
            return
        depths = [_depth(ch) for ch in channels]
        if not channels or None in depths:
            conn.send(dumps({"id": req_id, "method": method, "code": 40003}))
            return
        conn.send(dumps({"id": req_id, "method": method, "code": 0}))
        now = self.now_ns()
        for depth in depths:
            assert depth is not None
            if method == "unsubscribe":
                conn.subs.pop(f"book{depth}", None)
                continue
            conn.subs[f"book{depth}"] = True
            stream = self.streams.get(depth)
            if stream is None:
                stream = self.streams[depth] = _Stream(TopView(self.book, depth), self.u, now)
            # The stream's view is the book as of its last delta, so this snapshot continues
            # the chain at that delta's ``u``.
            conn.send(book_frame(depth, self._snapshot(depth, now, stream.last_u)))

    def _deltas(self, now_ns: int, *, force_empty: bool) -> None:
        for depth, stream in list(self.streams.items()):
            subs = [c for c in self.conns if f"book{depth}" in c.subs]
            if not subs:
                del self.streams[depth]
                continue
            inside, left = stream.view.advance()
            levels = inside + left  # the client's book is exactly the top N
            if not levels and not (force_empty and now_ns - stream.last_sent_ns >= EMPTY_DELTA_NS):
                continue
            self.u += 1 + self.rng.randrange(30)
            update = {
                "asks": _rows([(p, s) for side, p, s, _ in levels if side == ASK]),
                "bids": _rows([(p, s) for side, p, s, _ in levels if side == BID]),
            }
            data = {"update": update, "t": now_ns // 1_000_000, "tt": self.tt_ms}
            data.update(u=self.u, pu=stream.last_u)
            stream.last_u = self.u
            stream.last_sent_ns = now_ns
            frame = book_frame(depth, data)
            for conn in subs:
                conn.send_data(frame)

    def publish(self, changes: list[Change], now_ns: int) -> None:
        self.tt_ms = now_ns // 1_000_000
        self._deltas(now_ns, force_empty=False)

    def on_tick(self, now_ns: int) -> None:
        super().on_tick(now_ns)
        self._deltas(now_ns, force_empty=True)
        for conn in list(self.conns):
            wait = conn.subs.get("hb_wait")
            if wait is not None and now_ns > wait[1]:
                self.drop(conn)
            elif wait is None and now_ns >= conn.subs["hb_next"]:
                hb_id = now_ns // 1_000_000
                conn.subs["hb_wait"] = (hb_id, now_ns + int(self.heartbeat_timeout_s * 1e9))
                conn.subs["hb_next"] = now_ns + int(self.heartbeat_s * 1e9)
                conn.send(dumps({"id": hb_id, "method": "public/heartbeat", "code": 0}))

    async def get_book(self, request: web.Request) -> web.Response:
        depth = query_int(request, "depth", 50, 0, 2**31) or 50
        if request.query.get("instrument_name") != INSTRUMENT or depth not in DEPTHS:
            return self.json({"code": 40003, "method": "public/get-book", "message": "bad request"})
        data = {
            "asks": _rows(self.book.levels(ASK, depth)),
            "bids": _rows(self.book.levels(BID, depth)),
            "t": self.now_ns() // 1_000_000,
        }
        result = {"instrument_name": INSTRUMENT, "depth": depth, "data": [data]}
        return self.json({"code": 0, "method": "public/get-book", "result": result})


def _depth(channel: object) -> int | None:
    if not isinstance(channel, str):
        return None
    head, _, depth = channel.rpartition(".")
    if head != f"book.{INSTRUMENT}" or not depth.isdigit() or int(depth) not in DEPTHS:
        return None
    return int(depth)
