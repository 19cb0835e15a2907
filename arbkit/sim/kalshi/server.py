"""The Kalshi side of the embedded world: REST v2 and WebSocket v2 servers on loopback.

Protocol per reference/kalshi-api.md (§2 auth, §3 WS, §4 REST; dated eras in `wire`) and the
real captures in tests/data/real/kalshi (``ok`` replies to ``update_subscription`` carry
``sid``/``seq`` and consume a seq number; one ``subscribed`` per channel; frames end in ``\\n``).
State lives in the sans-I/O `Exchange`; this module only routes its events to subscribers,
answers commands and requests, and breaks things on purpose (`Faults` and test hooks).

Run standalone with ``python -m arbkit.sim.kalshi`` (see ``__main__``) or mount on a shared
aiohttp app with `KalshiSim.setup`.

Choices where the reference is silent (kept deliberate and documented): every REST response
carries the world clock in ``X-Arbkit-Server-Time-Ns`` (``Date`` has whole seconds only);
unsigned market-data GETs are served from a cache ``rest_cache_s`` old with ``Age`` and
``Cache-Control`` like CloudFront, signed ones are fresh; an error 25 frame names the dropped
``sid``; a closing market's book empties through ordinary deltas; with ``use_yes_price`` the
NO levels are listed ascending on the YES scale; ``trade``/lifecycle/``ticker`` carry no seq.
Ground truth for tests: `KalshiSim.book`, `markets`, `last_seqs`, `pause`/`resume`, `drain`;
faults on demand: `inject`, `drop_connections`, `stall`, `overflow`, `fail_rest`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from aiohttp import WSMsgType, web

from arbkit.core import clock
from arbkit.core.config import Credentials
from arbkit.sim.faults import STALL_FOR_S, Faults
from arbkit.sim.kalshi.auth import KeyRing, Verdict
from arbkit.sim.kalshi.exchange import (
    BookEvent,
    Event,
    EventCreated,
    Exchange,
    IndexEvent,
    TickerEvent,
    TradeEvent,
)
from arbkit.sim.kalshi.markets import IndexTape
from arbkit.sim.kalshi.wire import Era, Json, Wire, data_frame, frame

log = logging.getLogger(__name__)

REST_PREFIX = "/trade-api/v2"
WS_PATH = "/trade-api/ws/v2"
TIME_HEADER = "X-Arbkit-Server-Time-Ns"
"""Every REST response carries the world's clock in ns (``Date`` only has whole seconds)."""

CHANNELS = ("orderbook_delta", "ticker", "trade", "market_lifecycle_v2", "cfbenchmarks_value")
PRIVATE_CHANNELS = (
    "fill",
    "user_orders",
    "market_positions",
    "order_group_updates",
    "communications",
)
"""Accepted (the session is authenticated) but silent: the world has no accounts or orders."""
SEQUENCED = frozenset({"orderbook_delta", "cfbenchmarks_value"})
MARKET_FILTERED = frozenset({"orderbook_delta", "ticker", "trade"})
INDEX_IDS = ("BRTI",)

ERRORS: dict[int, str] = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    16: "Market not found",
    17: "Internal error",
    18: "Command timeout",
    19: "shard_factor must be > 0",
    20: "shard_factor is required when shard_key is set",
    21: "shard_key must be >= 0 and < shard_factor",
    22: "shard_factor must be <= 100",
    24: "Index IDs required",
    25: "Subscription buffer overflow",
    26: "Subscription market limit exceeded",
    27: "Too many requests",
}
REFUSALS = (17, 18, 27)
"""Transient refusals the ``refuse`` fault answers a subscribe or update_subscription with
(reference §3.4). An unsubscribe is never refused: a refused one leaves the server streaming a
sid the client already dropped, where an injected gap would go unseen (the client's retry of
a refused unsubscribe is unit-tested instead)."""

InjectKind = Literal["gap", "dup", "malformed"]


_HEADERS: dict[int, bytes] = {}


def _header(n: int) -> bytes:
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big")
    return b"\x81\x7f" + n.to_bytes(8, "big")


def ws_frames(texts: list[bytes]) -> bytes:
    """Unmasked server-to-client WebSocket text frames (RFC 6455 §5.2), back to back."""
    parts: list[bytes] = []
    append = parts.append
    headers = _HEADERS
    for text in texts:
        n = len(text)
        header = headers.get(n)
        if header is None:
            header = headers[n] = _header(n)
        append(header)
        append(text)
    return b"".join(parts)


def error_frame(code: int, cmd_id: int | None = None, **extra: Any) -> bytes:
    obj: Json = {"type": "error"}
    if cmd_id:
        obj["id"] = cmd_id
    obj["msg"] = {"code": code, "msg": ERRORS[code], **extra}
    return frame(obj)


def _rest_error(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": "", "service": "sim"}}
    return web.json_response(body, status=status, dumps=lambda o: orjson.dumps(o).decode())


@dataclass(eq=False)
class Subscription:
    sid: int
    channel: str
    tickers: set[str] | None
    use_yes_price: bool = False
    index_ids: set[str] = field(default_factory=set)
    skip_ticker_ack: bool = False
    seq: int = 0


@dataclass(eq=False)
class Connection:
    no: int
    ws: web.WebSocketResponse
    transport: asyncio.Transport
    subs: dict[int, Subscription] = field(default_factory=dict)
    next_sid: int = 1
    pending: list[bytes] = field(default_factory=list)


class _CmdError(Exception):
    def __init__(self, code: int, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


class KalshiSim:
    """Kalshi REST + WebSocket servers over one deterministic `Exchange`.

    ``index`` gives the world's BRTI at a wall-clock ns (None = no value); ``now_ns`` is the
    world's clock (tests may shift it to sit near a close). Maker knobs: ``mm_lag_s`` (how
    late quotes follow fair value), ``mm_noise`` (quote noise, probability units),
    ``update_hz``/``trade_hz`` (requotes and trades per market per second). ``delta_rate``
    adds a high-rate stream of single-level deltas on subscribed markets (per second;
    ``math.inf`` = as fast as the readers take them). ``buffer_limit`` is the per-connection
    outbound buffer (bytes) beyond which subscriptions are dropped with error 25;
    ``market_limit`` the markets one subscription may hold (error 26 beyond).
    """

    def __init__(
        self,
        *,
        index: Callable[[int], float | None],
        seed: int = 0,
        era: Era = "current",
        faults: Faults | None = None,
        rest_cache_s: float = 15.0,
        ping_interval: float = 10.0,
        now_ns: Callable[[], int] = clock.now_ns,
        mm_lag_s: float = 5.0,
        mm_noise: float = 0.01,
        update_hz: float = 2.0,
        trade_hz: float = 0.2,
        annual_vol: float = 0.55,
        ladder: int = 5,
        tick_s: float = 0.05,
        delta_rate: float = 0.0,
        buffer_limit: int = 32 * 1024 * 1024,
        market_limit: int = 10_000,
    ) -> None:
        self.wire = Wire(era)
        self.era = era
        self.faults = faults or Faults()
        self.rest_cache_s = rest_cache_s
        self.ping_interval = ping_interval
        self.now_ns = now_ns
        self.tick_s = tick_s
        self.delta_rate = delta_rate
        self.buffer_limit = buffer_limit
        self.market_limit = market_limit
        self.keys = KeyRing()
        self.exchange = Exchange(
            IndexTape(index),
            seed=seed,
            legacy_grid=era != "current",
            lag_s=mm_lag_s,
            noise=mm_noise,
            update_hz=update_hz,
            trade_hz=trade_hz,
            annual_vol=annual_vol,
            ladder=ladder,
        )
        self._rng = random.Random(seed ^ 0x5EED)
        self._conns: dict[int, Connection] = {}
        self._conn_no = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._cache: dict[str, tuple[float, int, bytes]] = {}
        self._inject: dict[str, int] = {"gap": 0, "dup": 0, "malformed": 0}
        self._injecting = False
        self._random_faults = any(self.faults.get(n) > 0 for n in ("gap", "dup", "malformed"))
        self._rest_failures: list[int] = []
        self._stall_until = 0.0
        self._stalled: set[int] = set()
        self._routes_dirty = True
        self._book_routes: dict[str, list[tuple[Connection, Subscription]]] = {}
        self.counters: dict[str, int] = {
            "connections": 0,
            "frames": 0,
            "rest_requests": 0,
            "auth_failures": 0,
            "gaps": 0,
            "dups": 0,
            "malformed": 0,
            "drops": 0,
            "overflows": 0,
            "refused": 0,
        }

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        return f"http://{self._host}:{self._port}{REST_PREFIX}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host}:{self._port}{WS_PATH}"

    def set_address(self, host: str, port: int) -> None:
        """Tell a mounted world where the shared app listens (for `rest_url`/`ws_url`)."""
        self._host, self._port = host, port

    def routes(self) -> list[web.RouteDef]:
        """The REST and WS routes, for mounting on a shared app."""
        p = REST_PREFIX
        return [
            web.get(WS_PATH, self._ws),
            web.get(f"{p}/markets", self._markets),
            web.get(f"{p}/markets/{{ticker}}", self._market),
            web.get(f"{p}/markets/{{ticker}}/orderbook", self._orderbook),
            web.get(f"{p}/series/{{ticker}}", self._series),
            web.get(f"{p}/exchange/status", self._exchange_status),
            web.route("*", f"{p}/{{tail:.*}}", self._not_found),
        ]

    def setup(self, app: web.Application) -> None:
        """Mount on ``app``; the world runs from the app's startup to its shutdown."""
        app.add_routes(self.routes())

        async def on_startup(_: web.Application) -> None:
            self._start_tasks()

        async def on_shutdown(_: web.Application) -> None:
            await self._stop_tasks()

        app.on_startup.append(on_startup)
        app.on_shutdown.append(on_shutdown)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Run standalone on ``host:port`` (0 = any free port)."""
        app = web.Application()
        self.setup(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.set_address(host, self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _start_tasks(self) -> None:
        self.step()
        self._tasks = [asyncio.create_task(self._world_loop())]
        if self.delta_rate > 0:
            self._tasks.append(asyncio.create_task(self._firehose()))

    async def _stop_tasks(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        await asyncio.gather(*(c.ws.close() for c in list(self._conns.values())))

    # --- credentials --------------------------------------------------------------------------

    def register_key(self, key_id: str, public_key: Any) -> None:
        """Accept signatures by ``key_id`` (an RSA public key object or PEM)."""
        self.keys.register(key_id, public_key)

    def generate_credentials(self, directory: Path) -> Credentials:
        """Make a key pair, write the private PEM into ``directory``, register the public key."""
        return self.keys.generate(directory)

    # --- ground truth and test hooks -------------------------------------------------------

    def book(self, ticker: str) -> tuple[dict[int, int], dict[int, int]]:
        """The true (YES bids, NO bids) of a market: ``{price_e4: qty_e2}``, NO-leg prices."""
        b = self.exchange.books[ticker]
        return dict(b.yes), dict(b.no)

    def markets(self, series: str | None = None, status: str | None = None) -> list[str]:
        """Tickers of the world's markets, optionally of one series / status, by close time."""
        ms = sorted(self.exchange.markets.values(), key=lambda m: (m.close_ns, m.ticker))
        return [
            m.ticker
            for m in ms
            if (series is None or m.series == series) and (status is None or m.status == status)
        ]

    def pause(self) -> None:
        """Freeze market activity (makers, trades, lifecycle, high-rate deltas)."""
        self.exchange.paused = True

    def resume(self) -> None:
        self.exchange.paused = False

    def last_seqs(self) -> dict[int, dict[int, int]]:
        """Last seq sent (or skipped) per connection number and sid."""
        return {c.no: {s.sid: s.seq for s in c.subs.values()} for c in self._conns.values()}

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every frame produced so far has left the outbound buffers."""
        deadline = time.monotonic() + timeout
        while any(c.transport.get_write_buffer_size() for c in self._conns.values()):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.002)

    def inject(self, kind: InjectKind, count: int = 1) -> None:
        """Break the next ``count`` data frames: ``gap`` skips sequenced frames (seq still
        advances), ``dup`` sends frames twice, ``malformed`` replaces frames by invalid JSON."""
        self._inject[kind] += count
        self._injecting = True

    def drop_connections(self) -> int:
        """Cut every WebSocket connection at the TCP level; how many were cut."""
        conns = list(self._conns.values())
        for c in conns:
            c.transport.abort()
        self.counters["drops"] += len(conns)
        return len(conns)

    def stall(self, seconds: float) -> None:
        """The open connections go silent for ``seconds``: no data, no pings, no replies
        (frames meanwhile are lost). A connection opened during the stall is served, as a
        client that notices the silence and reconnects would find on a stuck link."""
        self._stall_until = time.monotonic() + seconds
        self._stalled = set(self._conns)

    def _is_stalled(self, conn: Connection) -> bool:
        return conn.no in self._stalled and time.monotonic() < self._stall_until

    def overflow(self, sid: int | None = None) -> int:
        """Error 25 on ``sid`` (or on every orderbook subscription); the subscriptions go."""
        n = 0
        for conn in self._conns.values():
            for sub in list(conn.subs.values()):
                if sub.sid == sid or (sid is None and sub.channel == "orderbook_delta"):
                    self._drop_sub(conn, sub)
                    n += 1
            self._flush(conn)
        return n

    def fail_rest(self, status: int, count: int = 1) -> None:
        """The next ``count`` REST requests answer ``status`` (429, 500, 503…)."""
        self._rest_failures.extend([status] * count)

    # --- the world loop -------------------------------------------------------------------------

    def step(self) -> None:
        """Advance the exchange to ``now_ns()`` and send what happened."""
        self._dispatch(self.exchange.step(self.now_ns()))
        for conn in list(self._conns.values()):
            self._flush(conn)

    async def _world_loop(self) -> None:
        drop_mean = self.faults.get("drop")
        e25_mean = self.faults.get("error25")
        stall_mean = self.faults.get("stall")
        next_drop = self._next(drop_mean)
        next_e25 = self._next(e25_mean)
        next_stall = self._next(stall_mean)
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            if now >= next_drop:
                self.drop_connections()
                next_drop = self._next(drop_mean)
            if now >= next_e25:
                self.overflow()
                next_e25 = self._next(e25_mean)
            if now >= next_stall:
                self.stall(self.faults.get("stall_for", STALL_FOR_S))
                next_stall = self._next(stall_mean)
            try:
                self.step()
            except Exception:  # a bug in one step must not freeze the whole world
                log.exception("Kalshi world step failed; continuing")

    def _next(self, mean: float) -> float:
        if mean <= 0:
            return math.inf
        return time.monotonic() + self._rng.expovariate(1.0 / mean)

    async def _firehose(self) -> None:
        """High-rate mode: ``delta_rate`` single-level deltas/s over the subscribed markets.

        At a fixed rate a reader that falls behind overflows its buffer (error 25) as on
        Kalshi; at ``inf`` the stream slows to the slowest reader instead.
        """
        batch_cap = 512
        credit = 0.0
        last = time.monotonic()
        while True:
            if self.exchange.paused or not self._book_tickers():
                await asyncio.sleep(0.01)
                last = time.monotonic()
                continue
            if math.isinf(self.delta_rate):
                # As fast as the readers take them: wait for the slowest (no error 25).
                if any(c.transport.get_write_buffer_size() > 1 << 21 for c in self._conns.values()):
                    await asyncio.sleep(0.0005)
                    continue
                n = batch_cap
            else:
                now = time.monotonic()
                credit = min(credit + (now - last) * self.delta_rate, batch_cap * 8.0)
                last = now
                n = int(credit)
                credit -= n
            if n:
                events = self.exchange.burst(self._book_tickers(), n, self.now_ns())
                self._dispatch(events)
                for conn in list(self._conns.values()):
                    self._flush(conn)
            await asyncio.sleep(0 if math.isinf(self.delta_rate) else 0.001)

    def _book_tickers(self) -> list[str]:
        self._refresh_routes()
        return list(self._book_routes)

    def _refresh_routes(self) -> None:
        if not self._routes_dirty:
            return
        routes: dict[str, list[tuple[Connection, Subscription]]] = {}
        for conn in self._conns.values():
            for sub in conn.subs.values():
                if sub.channel == "orderbook_delta" and sub.tickers:
                    for t in sub.tickers:
                        routes.setdefault(t, []).append((conn, sub))
        self._book_routes = routes
        self._routes_dirty = False

    # --- sending ------------------------------------------------------------------------------

    def _send_data(
        self, conn: Connection, sub: Subscription, kind: str, msg: bytes, ms: int | None
    ) -> None:
        seq = None
        if sub.channel in SEQUENCED:
            sub.seq += 1
            seq = sub.seq
        text = data_frame(kind, sub.sid, seq, msg, ms)
        if (self._random_faults or self._injecting) and self._break(seq, text, conn):
            return
        conn.pending.append(text)

    def _break(self, seq: int | None, text: bytes, conn: Connection) -> bool:
        """Apply injected/random frame faults; True when the frame is fully handled."""
        inject, rng = self._inject, self._rng
        if seq is not None and (inject["gap"] or self.faults.chance("gap", rng)):
            inject["gap"] = max(inject["gap"] - 1, 0)
            self.counters["gaps"] += 1
            self._injecting = any(inject.values())
            return True
        if inject["malformed"] or self.faults.chance("malformed", rng):
            inject["malformed"] = max(inject["malformed"] - 1, 0)
            self.counters["malformed"] += 1
            conn.pending.append(text[: len(text) // 2] + b"\n")
            self._injecting = any(inject.values())
            return True
        if inject["dup"] or self.faults.chance("dup", rng):
            inject["dup"] = max(inject["dup"] - 1, 0)
            self.counters["dups"] += 1
            conn.pending.append(text)
        self._injecting = any(inject.values())
        return False

    def _flush(self, conn: Connection) -> None:
        if not conn.pending:
            return
        texts, conn.pending = conn.pending, []
        if self._is_stalled(conn) or conn.transport.is_closing():
            return
        conn.transport.write(ws_frames(texts))
        self.counters["frames"] += len(texts)
        if conn.transport.get_write_buffer_size() > self.buffer_limit:
            for sub in list(conn.subs.values()):
                if sub.channel == "orderbook_delta":
                    self._drop_sub(conn, sub)
            texts, conn.pending = conn.pending, []
            conn.transport.write(ws_frames(texts))

    def _drop_sub(self, conn: Connection, sub: Subscription) -> None:
        conn.subs.pop(sub.sid, None)
        self._routes_dirty = True
        self.counters["overflows"] += 1
        conn.pending.append(
            frame({"type": "error", "sid": sub.sid, "msg": {"code": 25, "msg": ERRORS[25]}})
        )

    def _dispatch(self, events: Iterable[Event]) -> None:
        self._refresh_routes()
        ex, wire = self.exchange, self.wire
        conns = list(self._conns.values())
        for ev in events:
            if isinstance(ev, BookEvent):
                routes = self._book_routes.get(ev.ticker)
                if not routes:
                    continue
                plain: bytes | None = None
                for conn, sub in routes:
                    if sub.use_yes_price:
                        msg = wire.delta(ev, True)
                    else:
                        msg = plain = plain or wire.delta(ev, False)
                    self._send_data(conn, sub, "orderbook_delta", msg, None)
                continue
            if isinstance(ev, IndexEvent):
                kind, channel, msg, ticker = (
                    "cfbenchmarks_value",
                    "cfbenchmarks_value",
                    wire.index(ev),
                    "",
                )
            elif isinstance(ev, TradeEvent):
                kind, channel, msg, ticker = "trade", "trade", wire.trade(ev), ev.ticker
            elif isinstance(ev, EventCreated):
                kind, channel, ticker = "event_lifecycle", "market_lifecycle_v2", ""
                msg = wire.event_lifecycle(ev.market)
            elif isinstance(ev, TickerEvent):
                m = ex.markets[ev.ticker]
                kind, channel, ticker = "ticker", "ticker", ev.ticker
                msg = wire.ticker(m, ex.top(ev.ticker), ev.ts_ns)
            else:
                m = ex.markets[ev.ticker]
                kind, channel, ticker = "market_lifecycle_v2", "market_lifecycle_v2", ev.ticker
                msg = wire.lifecycle(m, ev.event_type, ev.ts_ns)
            ms = wire.sending_ms(ev.ts_ns)
            for conn in conns:
                for sub in list(conn.subs.values()):
                    if sub.channel != channel:
                        continue
                    if channel == "cfbenchmarks_value" and not sub.index_ids:
                        continue
                    if (
                        sub.tickers is not None
                        and channel in MARKET_FILTERED
                        and ticker not in sub.tickers
                    ):
                        continue
                    self._send_data(conn, sub, kind, msg, ms)

    # --- WebSocket ----------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        verdict = self.keys.verify(
            request.headers, "GET", request.path, clock.now_ns() // 1_000_000
        )
        if verdict is not Verdict.OK:
            self.counters["auth_failures"] += 1
            return _rest_error(401, "authentication_error", "authentication required")
        ws = web.WebSocketResponse(
            timeout=2.0, compress=False, autoping=False, max_msg_size=1 << 20
        )
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        self._conn_no += 1
        conn = Connection(self._conn_no, ws, transport)
        self._conns[conn.no] = conn
        self.counters["connections"] += 1
        pinger = asyncio.create_task(self._pinger(conn))
        try:
            async for msg in ws:
                if self._is_stalled(conn):
                    continue
                if msg.type is WSMsgType.TEXT:
                    self._command(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self._command(conn, msg.data.decode("utf-8", "replace"))
                elif msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
        finally:
            pinger.cancel()
            self._conns.pop(conn.no, None)
            self._routes_dirty = True
        return ws

    async def _pinger(self, conn: Connection) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            if not self._is_stalled(conn) and not conn.transport.is_closing():
                await conn.ws.ping(b"heartbeat")

    def _command(self, conn: Connection, text: str) -> None:
        cmd_id: int | None = None
        try:
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise _CmdError(1) from None
            if not isinstance(obj, dict):
                raise _CmdError(1)
            raw_id = obj.get("id", 0)
            if not isinstance(raw_id, int) or isinstance(raw_id, bool) or raw_id < 0:
                raise _CmdError(1)
            cmd_id = raw_id
            cmd = obj.get("cmd")
            if cmd == "list_subscriptions":
                subs = [{"channel": s.channel, "sid": s.sid} for s in conn.subs.values()]
                conn.pending.append(frame({"type": "ok", "id": cmd_id, "msg": subs}))
            elif cmd in ("subscribe", "unsubscribe", "update_subscription"):
                if cmd != "unsubscribe" and self.faults.chance("refuse", self._rng):
                    self.counters["refused"] += 1
                    raise _CmdError(self._rng.choice(REFUSALS))
                params = obj.get("params")
                if params is None:
                    raise _CmdError(2)
                if not isinstance(params, dict):
                    raise _CmdError(1)
                if cmd == "subscribe":
                    self._subscribe(conn, cmd_id, params)
                elif cmd == "unsubscribe":
                    self._unsubscribe(conn, cmd_id, params)
                else:
                    self._update(conn, cmd_id, params)
            else:
                raise _CmdError(5)
        except _CmdError as e:
            conn.pending.append(error_frame(e.code, cmd_id, **e.extra))
        self._flush(conn)

    def _tickers(self, params: Json, channel: str) -> list[str] | None:
        """The markets a command names for ``channel``; None when it names none.

        ``market_id``/``market_ids`` (UUIDs) filter the ``ticker`` channel only (reference
        §3.2, 2026-03); for other channels they name nothing.
        """
        one, many = params.get("market_ticker"), params.get("market_tickers")
        if one is not None and many is not None:
            raise _CmdError(11)
        if one is not None:
            if not isinstance(one, str):
                raise _CmdError(1)
            return [one]
        if many is not None:
            if not isinstance(many, list) or not all(isinstance(t, str) for t in many):
                raise _CmdError(1)
            return list(dict.fromkeys(many)) or None
        ids = params.get("market_id") or params.get("market_ids")
        if ids is not None and channel == "ticker":
            wanted = {ids} if isinstance(ids, str) else set(ids)
            return [m.ticker for m in self.exchange.markets.values() if m.market_id in wanted]
        return None

    def _known(self, tickers: list[str]) -> None:
        for t in tickers:
            if t not in self.exchange.markets:
                raise _CmdError(16, market_ticker=t)

    def _subscribe(self, conn: Connection, cmd_id: int, params: Json) -> None:
        channels = params.get("channels")
        if not channels:
            raise _CmdError(3)
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise _CmdError(1)
        self._check_shards(params)
        named = {c: self._tickers(params, c) for c in ("orderbook_delta", "ticker")}
        for tickers in named.values():
            if tickers:
                self._known(tickers)
                if len(tickers) > self.market_limit:
                    raise _CmdError(26)
        for channel in channels:
            tickers = named["ticker" if channel == "ticker" else "orderbook_delta"]
            if channel not in CHANNELS and channel not in PRIVATE_CHANNELS:
                conn.pending.append(error_frame(8, cmd_id))
                continue
            if channel == "orderbook_delta" and not tickers:
                conn.pending.append(error_frame(14, cmd_id))
                continue
            index_ids: set[str] = set()
            if channel == "cfbenchmarks_value":
                ids = params.get("index_ids")
                if not ids or not isinstance(ids, list):
                    conn.pending.append(error_frame(24, cmd_id))
                    continue
                index_ids = set(INDEX_IDS) if "all" in ids else set(ids) & set(INDEX_IDS)
            sub = Subscription(
                sid=conn.next_sid,
                channel=channel,
                tickers=set(tickers) if tickers and channel in MARKET_FILTERED else None,
                use_yes_price=bool(params.get("use_yes_price", False)),
                index_ids=index_ids,
                skip_ticker_ack=bool(params.get("skip_ticker_ack", False)),
            )
            conn.next_sid += 1
            conn.subs[sub.sid] = sub
            self._routes_dirty = True
            conn.pending.append(
                frame(
                    {
                        "type": "subscribed",
                        "id": cmd_id,
                        "msg": {"channel": channel, "sid": sub.sid},
                    }
                )
            )
            if channel == "orderbook_delta" and tickers:
                self._snapshots(conn, sub, tickers)
            elif channel == "ticker" and params.get("send_initial_snapshot") and tickers:
                for t in tickers:
                    m = self.exchange.markets[t]
                    msg = self.wire.ticker(m, self.exchange.top(t), self.now_ns())
                    self._send_data(conn, sub, "ticker", msg, self.wire.sending_ms(self.now_ns()))

    @staticmethod
    def _check_shards(params: Json) -> None:
        factor, key = params.get("shard_factor"), params.get("shard_key")
        if factor is None:
            if key is not None:
                raise _CmdError(20)
            return
        if not isinstance(factor, int) or factor <= 0:
            raise _CmdError(19)
        if factor > 100:
            raise _CmdError(22)
        if key is not None and (not isinstance(key, int) or not 0 <= key < factor):
            raise _CmdError(21)

    def _snapshots(self, conn: Connection, sub: Subscription, tickers: Iterable[str]) -> None:
        for t in tickers:
            m = self.exchange.markets[t]
            msg = self.wire.snapshot(m, self.exchange.books[t], sub.use_yes_price)
            self._send_data(conn, sub, "orderbook_snapshot", msg, None)

    def _unsubscribe(self, conn: Connection, cmd_id: int, params: Json) -> None:
        sids = params.get("sids")
        if not sids:
            raise _CmdError(4)
        if not isinstance(sids, list) or not all(isinstance(s, int) for s in sids):
            raise _CmdError(1)
        for sid in sids:
            sub = conn.subs.pop(sid, None)
            if sub is None:
                conn.pending.append(error_frame(7, cmd_id))
                continue
            self._routes_dirty = True
            reply: Json = {"type": "unsubscribed", "id": cmd_id, "sid": sid}
            if sub.channel in SEQUENCED:
                sub.seq += 1
                reply["seq"] = sub.seq
            conn.pending.append(frame(reply))

    def _update(self, conn: Connection, cmd_id: int, params: Json) -> None:
        sid = params.get("sid")
        sids = params.get("sids")
        if sid is None and isinstance(sids, list) and len(sids) == 1:
            sid = sids[0]
        elif sid is not None and sids is not None:
            sid = None
        if not isinstance(sid, int) or isinstance(sid, bool):
            raise _CmdError(12)
        action = params.get("action")
        if not action:
            raise _CmdError(15)
        sub = conn.subs.get(sid)
        if sub is None:
            raise _CmdError(7)
        if sub.channel == "cfbenchmarks_value":
            self._update_indices(conn, cmd_id, sub, action, params)
            return
        if action not in ("add_markets", "delete_markets", "get_snapshot"):
            raise _CmdError(13)
        if sub.channel not in MARKET_FILTERED or (
            action == "get_snapshot" and sub.channel != "orderbook_delta"
        ):
            raise _CmdError(13)
        tickers = self._tickers(params, sub.channel)
        if not tickers:
            raise _CmdError(14)
        self._known(tickers)
        current = sub.tickers
        if current is None:
            # UNVERIFIED (reference silent): an unfiltered subscription (ticker, trade) covers
            # every market already; add/delete leave it so and the ok lists no markets
            pass
        elif action == "get_snapshot":
            missing = [t for t in tickers if t not in current]
            if missing:
                raise _CmdError(16, market_ticker=missing[0])
        elif action == "add_markets":
            tickers = [t for t in tickers if t not in current]
            if len(current) + len(tickers) > self.market_limit:
                raise _CmdError(26)
            sub.tickers = current | set(tickers)
        else:
            sub.tickers = current - set(tickers)
        self._routes_dirty = True
        reply: Json = {"type": "ok", "id": cmd_id, "sid": sid}
        if sub.channel in SEQUENCED:
            sub.seq += 1
            reply["seq"] = sub.seq
        reply["msg"] = {} if sub.skip_ticker_ack else {"market_tickers": sorted(sub.tickers or ())}
        conn.pending.append(frame(reply))
        if sub.channel == "orderbook_delta" and action != "delete_markets":
            self._snapshots(conn, sub, tickers)

    def _update_indices(
        self, conn: Connection, cmd_id: int, sub: Subscription, action: str, params: Json
    ) -> None:
        if action == "indexlist":
            sub.seq += 1
            conn.pending.append(
                frame(
                    {
                        "type": "cfbenchmarks_value_indexlist",
                        "id": cmd_id,
                        "sid": sub.sid,
                        "seq": sub.seq,
                        "msg": {"index_ids": sorted(sub.index_ids)},
                    }
                )
            )
            return
        if action not in ("subscribe_indices", "unsubscribe_indices"):
            raise _CmdError(13)
        ids = params.get("index_ids")
        if not ids or not isinstance(ids, list):
            raise _CmdError(24)
        named = set(INDEX_IDS) if "all" in ids else set(ids) & set(INDEX_IDS)
        if action == "subscribe_indices":
            sub.index_ids |= named
        else:
            sub.index_ids -= named
        sub.seq += 1
        conn.pending.append(
            frame(
                {
                    "type": "ok",
                    "id": cmd_id,
                    "sid": sub.sid,
                    "seq": sub.seq,
                    "msg": {"index_ids": sorted(sub.index_ids)},
                }
            )
        )

    # --- REST ---------------------------------------------------------------------------------

    async def _rest(
        self, request: web.Request, body: Callable[[], tuple[int, Json]], cacheable: bool = True
    ) -> web.Response:
        """Common REST path: auth, faults, CDN-like cache for unsigned reads, clock header."""
        self.counters["rest_requests"] += 1
        verdict = self.keys.verify(
            request.headers, request.method, request.path, clock.now_ns() // 1_000_000
        )
        if verdict is Verdict.BAD:
            self.counters["auth_failures"] += 1
            return self._stamp(_rest_error(401, "authentication_error", "invalid signature"))
        slow = self.faults.get("slow")
        if slow > 0:
            await asyncio.sleep(slow)
        status = self._rest_failures.pop(0) if self._rest_failures else 0
        if not status and self.faults.chance("http429", self._rng):
            status = 429
        if not status and self.faults.chance("http5xx", self._rng):
            status = 503
        if status == 429:
            return self._stamp(_rest_error(429, "too_many_requests", "too many requests"))
        if status:
            return self._stamp(
                _rest_error(status, "internal_server_error", "internal server error")
            )
        use_cache = cacheable and verdict is Verdict.ABSENT and self.rest_cache_s > 0
        key = request.path_qs
        now = time.monotonic()
        headers: dict[str, str] = {}
        hit = self._cache.get(key) if use_cache else None
        if hit is not None and now - hit[0] < self.rest_cache_s:
            created, code, data = hit
            headers = {"Age": str(int(now - created)), "X-Cache": "Hit from cloudfront"}
        else:
            code, obj = body()
            data = orjson.dumps(obj)
            if use_cache and code == 200:
                if len(self._cache) >= 4096:  # bounded: forget expired entries
                    ttl = self.rest_cache_s
                    self._cache = {k: v for k, v in self._cache.items() if now - v[0] < ttl}
                self._cache[key] = (now, code, data)
                headers = {"X-Cache": "Miss from cloudfront"}
        if use_cache:
            headers["Cache-Control"] = f"public, max-age={int(self.rest_cache_s)}"
        resp = web.Response(
            body=data, status=code, content_type="application/json", headers=headers
        )
        return self._stamp(resp)

    def _stamp(self, resp: web.Response) -> web.Response:
        resp.headers[TIME_HEADER] = str(self.now_ns())
        return resp

    async def _markets(self, request: web.Request) -> web.Response:
        return await self._rest(request, lambda: self._markets_body(request.query))

    def _markets_body(self, q: Any) -> tuple[int, Json]:
        try:
            limit = int(q.get("limit", 100))
            offset = int(base64.urlsafe_b64decode(q["cursor"]).decode()) if q.get("cursor") else 0
        except (ValueError, UnicodeDecodeError):
            return 400, {
                "error": {"code": "invalid_parameters", "message": "invalid limit or cursor"}
            }
        if not 0 <= limit <= 1000:
            return 400, {
                "error": {"code": "invalid_parameters", "message": "limit must be 0..1000"}
            }
        statuses = {
            "unopened": {"initialized"},
            "open": {"active"},
            "closed": {"closed", "determined"},
            "settled": {"finalized"},
        }
        status = q.get("status")
        if status is not None and status not in statuses:
            return 400, {"error": {"code": "invalid_parameters", "message": "invalid status"}}
        series = q.get("series_ticker")
        events = set(q["event_ticker"].split(",")) if q.get("event_ticker") else None
        tickers = set(q["tickers"].split(",")) if q.get("tickers") else None
        ms = [
            m
            for m in sorted(self.exchange.markets.values(), key=lambda m: (m.close_ns, m.ticker))
            if (series is None or m.series == series)
            and (status is None or m.status in statuses[status])
            and (events is None or m.event_ticker in events)
            and (tickers is None or m.ticker in tickers)
        ]
        page = ms[offset : offset + (limit or 100)]
        end = offset + len(page)
        cursor = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(ms) else ""
        ex = self.exchange
        return 200, {
            "markets": [self.wire.market(m, ex.top(m.ticker)) for m in page],
            "cursor": cursor,
        }

    async def _market(self, request: web.Request) -> web.Response:
        ticker = request.match_info["ticker"]

        def body() -> tuple[int, Json]:
            m = self.exchange.markets.get(ticker)
            if m is None:
                return 404, _not_found_body("market_not_found", "market not found")
            return 200, {"market": self.wire.market(m, self.exchange.top(ticker))}

        return await self._rest(request, body)

    async def _orderbook(self, request: web.Request) -> web.Response:
        ticker = request.match_info["ticker"]

        def body() -> tuple[int, Json]:
            book = self.exchange.books.get(ticker)
            if book is None:
                return 404, _not_found_body("market_not_found", "market not found")
            try:
                depth = int(request.query.get("depth", 0))
            except ValueError:
                return 400, {"error": {"code": "invalid_parameters", "message": "invalid depth"}}
            return 200, self.wire.orderbook(book, depth)

        return await self._rest(request, body)

    async def _series(self, request: web.Request) -> web.Response:
        ticker = request.match_info["ticker"]

        def body() -> tuple[int, Json]:
            out = self.wire.series(ticker)
            if out is None:
                return 404, _not_found_body("not_found", "series not found")
            return 200, out

        return await self._rest(request, body)

    async def _exchange_status(self, request: web.Request) -> web.Response:
        body = {
            "exchange_active": True,
            "trading_active": True,
            "exchange_estimated_resume_time": None,
        }
        return await self._rest(request, lambda: (200, body), cacheable=False)

    async def _not_found(self, request: web.Request) -> web.Response:
        return await self._rest(
            request, lambda: (404, _not_found_body("not_found", "not found")), False
        )


def _not_found_body(code: str, message: str) -> Json:
    return {"error": {"code": code, "message": message, "details": ""}}
