"""What every simulated venue server shares: connections, fault injection, REST wrapping.

A `VenueServer` owns one venue's true book and serves it over WebSocket and REST. The world's
tick loop calls `publish` with each step's changes and `on_tick` for timers (heartbeats,
forced drops). Each client connection is a `Conn` with a bounded outgoing queue drained by
one writer task, so a slow client is disconnected (as real venues do) instead of growing
memory. Faults from the plan apply per frame (``gap``, ``dup``, ``malformed``, ``corrupt``)
or per connection (``drop``); `inject` queues one-shot faults for tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import orjson
from aiohttp import WSMsgType, web

from arbkit.core.book import BookView
from arbkit.sim.faults import Faults
from arbkit.sim.spot.book import Change, VenueBook

Json = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

QUEUE_LIMIT = 20_000  # frames buffered per connection before the client counts as too slow
INJECTED_SLOW_S = 1.0  # delay of a REST response slowed by `inject("slow")`
CLOSE_TIMEOUT_S = 1.0  # how long a close waits for the client's close frame
FRAME_FAULTS = frozenset({"gap", "dup", "malformed", "corrupt"})

log = logging.getLogger(__name__)


def dict_field(msg: Json, name: str) -> Json | None:
    """``msg[name]`` as an object (absent or empty: ``{}``); None when it is not one."""
    value = msg.get(name)
    if not value:
        return {}
    return value if isinstance(value, dict) else None


def list_field(msg: Json, name: str) -> list[Any] | None:
    """``msg[name]`` as a list (absent or empty: ``[]``); None when it is not one."""
    value = msg.get(name)
    if not value:
        return []
    return value if isinstance(value, list) else None


class BadParam(Exception):
    """A REST query parameter the venue refuses with 400 (its `VenueServer.rest_error`)."""


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter in ``[lo, hi]`` (absent or empty: ``default``)."""
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadParam(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise BadParam(f"{name} must be {lo}..{hi}")
    return value


def dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


class Conn:
    """One client WebSocket of a venue: outgoing queue, sequence counter, one-shot faults."""

    def __init__(self, server: VenueServer, ws: web.WebSocketResponse, request: web.Request):
        self.server = server
        self.ws = ws
        self.request = request
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LIMIT)
        self.seq = 0  # the venue's per-connection sequence (Coinbase, Gemini v1, ...)
        self.pending: set[str] = set()
        self.subs: dict[str, Any] = {}  # venue-specific subscription state
        self.drop_at_ns: int | None = None
        self.opened_ns = server.now_ns()
        self.last_sent_ns = self.opened_ns
        self.closing = False

    def fault(self, name: str) -> bool:
        """Whether a frame fault fires now: an injected one-shot, or the plan's chance."""
        if name in self.pending:
            self.pending.discard(name)
            return True
        return self.server.faults.chance(name, self.server.rng)

    def send(self, text: str) -> None:
        """Queue one frame, applying the ``malformed`` and ``dup`` faults."""
        if self.closing:
            return
        self.last_sent_ns = self.server.now_ns()
        if self.fault("malformed"):
            text = text[: max(1, len(text) // 2)]
        try:
            self.queue.put_nowait(text)
            if self.fault("dup"):
                self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.close()

    def send_data(self, text: str) -> None:
        """Send a data frame; a ``gap`` fault loses it (as if the network or venue dropped it)."""
        if not self.fault("gap"):
            self.send(text)

    def send_seq(self, build: Callable[[int], str]) -> None:
        """Send a frame that consumes one sequence number; a ``gap`` fault loses the frame."""
        seq = self.seq
        self.seq += 1
        if not self.fault("gap"):
            self.send(build(seq))

    def close(self) -> None:
        """Close after the frames already queued (at once if the queue is full)."""
        if self.closing:
            return
        self.closing = True
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.server.spawn(self.ws.close())

    async def write_loop(self) -> None:
        while True:
            text = await self.queue.get()
            if text is None:
                await self.ws.close()
                return
            await self.ws.send_str(text)


class VenueServer:
    """Base of the per-venue servers: connection handling, timers and REST faults."""

    name: ClassVar[str]
    symbol: ClassVar[str]
    published_depth: ClassVar[int | None] = None
    """Deepest book the venue's public feed shows (None: all of it). The world's reference
    BRTI sees no more than that, as CF sees each venue through its own API."""

    def __init__(self, book: VenueBook, faults: Faults, *, now_ns: Callable[[], int]) -> None:
        self.book = book
        self.faults = faults
        self.now_ns = now_ns
        self.rng = random.Random(f"{book.rng.random()}:{self.name}:faults")
        self.conns: set[Conn] = set()
        self.rest_pending: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.init_state()

    def init_state(self) -> None:
        """Venue-specific state (counters, timers), set up once at construction."""

    def published_view(self) -> BookView:
        """The book as the venue's public feed shows it now (its `published_depth`): what CF,
        like any subscriber, computes from. Venues that throttle their feed override it."""
        return self.book.view(self.published_depth)

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- routes ---------------------------------------------------------------------------
    def routes(self, prefix: str) -> list[web.RouteDef]:
        """Every route of the venue under ``prefix`` (e.g. ``/kraken``)."""
        out = [web.get(prefix + path, self.handle_ws) for path in self.ws_paths()]
        out += [web.get(prefix + path, self.rest(h)) for path, h in self.rest_paths()]
        return out

    def ws_paths(self) -> list[str]:
        raise NotImplementedError

    def rest_paths(self) -> list[tuple[str, Handler]]:
        raise NotImplementedError

    def endpoint_paths(self) -> tuple[str, str]:
        """(ws path, REST base path) the client is configured with."""
        raise NotImplementedError

    # -- websocket ------------------------------------------------------------------------
    async def handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20, timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        conn = Conn(self, ws, request)
        drop = self.faults.get("drop")
        if drop > 0:
            conn.drop_at_ns = self.now_ns() + int(self.rng.expovariate(1.0 / drop) * 1e9)
        self.conns.add(conn)
        writer = asyncio.create_task(conn.write_loop())
        try:
            self.on_open(conn)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    obj = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    self.on_bad_message(conn, msg.data)
                    continue
                if not isinstance(obj, dict):
                    self.on_bad_message(conn, msg.data)
                    continue
                try:
                    self.on_message(conn, obj)
                except Exception:  # a handler bug answers like bad input, never kills the socket
                    log.exception("%s: message %r failed", self.name, msg.data[:200])
                    self.on_bad_message(conn, msg.data)
        finally:
            self.conns.discard(conn)
            conn.closing = True
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await ws.close()
        return ws

    def on_open(self, conn: Conn) -> None:
        """A client connected (venues without a subscribe message start streaming here)."""

    def on_message(self, conn: Conn, msg: Json) -> None:
        """A JSON object from the client."""

    def on_bad_message(self, conn: Conn, text: str) -> None:
        """Text that is not a JSON object; venues answer with their error frame or ignore it."""

    def publish(self, changes: list[Change], now_ns: int) -> None:
        """The true book changed by ``changes`` at ``now_ns``: stream it to subscribers."""
        raise NotImplementedError

    def on_tick(self, now_ns: int) -> None:
        """Timers: forced drops here, heartbeats in the venues."""
        for conn in list(self.conns):
            if conn.drop_at_ns is not None and now_ns >= conn.drop_at_ns:
                conn.drop_at_ns = None
                self.drop(conn)

    def drop(self, conn: Conn) -> None:
        """Force a disconnect (Bitstamp asks the client to reconnect first)."""
        conn.closing = True
        self.spawn(conn.ws.close())

    def inject(self, fault: str) -> None:
        """One-shot fault on every current connection (or the next REST request)."""
        if fault in FRAME_FAULTS:
            for conn in self.conns:
                conn.pending.add(fault)
        elif fault == "drop":
            for conn in list(self.conns):
                self.drop(conn)
        elif fault in ("http429", "http5xx", "slow"):
            self.rest_pending.add(fault)
        else:
            msg = f"{self.name} cannot inject {fault!r}"
            raise ValueError(msg)

    async def close_all(self) -> None:
        conns = list(self.conns)
        for conn in conns:
            conn.closing = True
        await asyncio.gather(*(c.ws.close() for c in conns), return_exceptions=True)

    # -- REST -----------------------------------------------------------------------------
    def rest(self, handler: Handler) -> Handler:
        """Wrap a REST handler with the ``slow``, ``http429`` and ``http5xx`` faults."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            slow = self.faults.get("slow")
            if "slow" in self.rest_pending:
                self.rest_pending.discard("slow")
                slow = max(slow, INJECTED_SLOW_S)
            if slow > 0:
                await asyncio.sleep(slow)
            if "http429" in self.rest_pending or self.faults.chance("http429", self.rng):
                self.rest_pending.discard("http429")
                return web.json_response(self.rest_error(429), status=429)
            if "http5xx" in self.rest_pending or self.faults.chance("http5xx", self.rng):
                self.rest_pending.discard("http5xx")
                return web.json_response(self.rest_error(503), status=503)
            try:
                return await handler(request)
            except BadParam as exc:
                return web.json_response(self.rest_error(400, str(exc)), status=400)

        return wrapped

    def rest_error(self, status: int, detail: str = "") -> Json:
        """The venue's error body for an HTTP error status (``detail``: what was wrong)."""
        text = {400: "Bad request", 429: "Too many requests"}.get(status, "Service unavailable")
        return {"error": f"{text}: {detail}" if detail else text}

    @staticmethod
    def json(body: object) -> web.Response:
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def broadcast(self, text: str, conns: list[Conn] | None = None) -> None:
        for conn in self.conns if conns is None else conns:
            conn.send(text)
