"""The Kalshi side of the embedded world: REST v2 and WebSocket v2 servers on loopback.

Protocol per reference/kalshi-api.md (§2 auth, §3 WS, §4 REST; dated eras in `wire`) and the
real captures in tests/data/real/kalshi (``ok`` replies to ``update_subscription`` carry
``sid``/``seq`` and consume a seq number; one ``subscribed`` per channel; frames end in ``\\n``).
State lives in the sans-I/O `Exchange`; this module runs the world loop, routes its events to
subscribers and breaks things on purpose (`Faults` and test hooks). Commands are answered in
`commands`, REST in `rest` (behind the `cdn` cache); the vocabulary is in `vocab`.

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
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from aiohttp import WSMsgType, web

from arbkit.core import clock
from arbkit.core.config import Credentials
from arbkit.sim.faults import STALL_FOR_S, Faults
from arbkit.sim.kalshi.auth import KeyRing, Verdict
from arbkit.sim.kalshi.cdn import CdnCache
from arbkit.sim.kalshi.commands import CommandHandler, Connection, Subscription
from arbkit.sim.kalshi.exchange import (
    BookEvent,
    Event,
    EventCreated,
    Exchange,
    IndexEvent,
    TickerEvent,
    TradeEvent,
)
from arbkit.sim.kalshi.framing import ws_frames
from arbkit.sim.kalshi.markets import FeeChange, IndexTape
from arbkit.sim.kalshi.rest import REST_PREFIX, TIME_HEADER, KalshiRest, RestError, rest_error
from arbkit.sim.kalshi.vocab import MARKET_FILTERED, SEQUENCED, Channel, ErrorCode
from arbkit.sim.kalshi.wire import Era, Wire, data_frame, frame

__all__ = ["REST_PREFIX", "TIME_HEADER", "WS_PATH", "KalshiSim"]

log = logging.getLogger(__name__)

WS_PATH = "/trade-api/ws/v2"

InjectKind = Literal["gap", "dup", "malformed"]


class KalshiSim(CommandHandler, KalshiRest):
    """Kalshi REST + WebSocket servers over one deterministic `Exchange`.

    ``index`` gives the world's BRTI at a wall-clock ns (None = no value); ``now_ns`` is the
    world's clock (tests may shift it to sit near a close). Maker knobs: ``mm_lag_s`` (how
    late quotes follow fair value), ``mm_noise`` (quote noise, probability units),
    ``update_hz``/``trade_hz`` (requotes and trades per market per second). ``delta_rate``
    adds a high-rate stream of single-level deltas on subscribed markets (per second;
    ``math.inf`` = as fast as the readers take them). ``buffer_limit`` is the per-connection
    outbound buffer (bytes) beyond which subscriptions are dropped with error 25;
    ``market_limit`` the markets one subscription may hold (error 26 beyond).
    ``rest_cache_s`` is the CDN cache age of unsigned REST reads (0 = none); ``ws_delay_s``
    holds every outgoing WebSocket frame back that long (a network's one-way delay; the
    error-25 buffer check sees only bytes already written); ``maintenance`` makes
    ``/exchange/status`` follow Kalshi's weekly Thursday 03:00-05:00 ET trading pause;
    ``fee_changes`` are listed by ``/series/fee_changes``. `ready` turns true (and stays) once
    every series has an open market and every open market has been quoted.
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
        ws_delay_s: float = 0.0,
        maintenance: bool = False,
        fee_changes: Sequence[FeeChange] = (),
    ) -> None:
        self.wire = Wire(era)
        self.era = era
        self.faults = faults or Faults()
        self.cdn = CdnCache(rest_cache_s)
        self.ws_delay_s = ws_delay_s
        self.maintenance = maintenance
        self.fee_changes = fee_changes
        self.ready = False
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
    def rest_cache_s(self) -> float:
        """The CDN cache age of unsigned REST reads (the constructor's ``rest_cache_s``)."""
        return self.cdn.ttl_s

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
        return [web.get(WS_PATH, self._ws), *self.rest_routes()]

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
        while any(c.delayed or c.transport.get_write_buffer_size() for c in self._conns.values()):
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
                if sub.sid == sid or (sid is None and sub.channel == Channel.ORDERBOOK_DELTA):
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
        if not self.ready and self.exchange.ready():
            self.ready = True

    async def wait_ready(self, timeout: float) -> None:
        """Wait until `ready` (every series open and quoted); `TimeoutError` after ``timeout``."""
        async with asyncio.timeout(timeout):
            while not self.ready:
                await asyncio.sleep(self.tick_s)

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
                if sub.channel == Channel.ORDERBOOK_DELTA and sub.tickers:
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
        self._write(conn, ws_frames(texts))
        self.counters["frames"] += len(texts)
        if conn.transport.get_write_buffer_size() > self.buffer_limit:
            for sub in list(conn.subs.values()):
                if sub.channel == Channel.ORDERBOOK_DELTA:
                    self._drop_sub(conn, sub)
            texts, conn.pending = conn.pending, []
            self._write(conn, ws_frames(texts))

    def _write(self, conn: Connection, data: bytes) -> None:
        """Write now, or after ``ws_delay_s`` through the connection's courier (in order)."""
        if self.ws_delay_s <= 0:
            conn.transport.write(data)
            return
        conn.delayed.append((asyncio.get_running_loop().time() + self.ws_delay_s, data))
        if conn.courier is None:
            conn.courier = asyncio.create_task(self._courier(conn))

    @staticmethod
    async def _courier(conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        while conn.delayed:
            due, data = conn.delayed[0]
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            conn.delayed.popleft()
            if not conn.transport.is_closing():
                conn.transport.write(data)
        conn.courier = None

    def _drop_sub(self, conn: Connection, sub: Subscription) -> None:
        conn.subs.pop(sub.sid, None)
        self._routes_dirty = True
        self.counters["overflows"] += 1
        conn.pending.append(
            frame(
                {
                    "type": "error",
                    "sid": sub.sid,
                    "msg": {
                        "code": int(ErrorCode.BUFFER_OVERFLOW),
                        "msg": ErrorCode.BUFFER_OVERFLOW.message,
                    },
                }
            )
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
                    Channel.CFBENCHMARKS_VALUE,
                    wire.index(ev),
                    "",
                )
            elif isinstance(ev, TradeEvent):
                kind, channel, msg, ticker = "trade", Channel.TRADE, wire.trade(ev), ev.ticker
            elif isinstance(ev, EventCreated):
                kind, channel, ticker = "event_lifecycle", Channel.MARKET_LIFECYCLE_V2, ""
                msg = wire.event_lifecycle(ev.market)
            elif isinstance(ev, TickerEvent):
                m = ex.markets[ev.ticker]
                kind, channel, ticker = "ticker", Channel.TICKER, ev.ticker
                msg = wire.ticker(m, ex.top(ev.ticker), ev.ts_ns)
            else:
                m = ex.markets[ev.ticker]
                kind, channel, ticker = (
                    "market_lifecycle_v2",
                    Channel.MARKET_LIFECYCLE_V2,
                    ev.ticker,
                )
                msg = wire.lifecycle(m, ev.event_type, ev.ts_ns)
            ms = wire.sending_ms(ev.ts_ns)
            for conn in conns:
                for sub in list(conn.subs.values()):
                    if sub.channel != channel:
                        continue
                    if channel == Channel.CFBENCHMARKS_VALUE and not sub.index_ids:
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
            return rest_error(401, RestError.AUTHENTICATION, "authentication required")
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
            if conn.courier is not None:
                conn.courier.cancel()
            self._conns.pop(conn.no, None)
            self._routes_dirty = True
        return ws

    async def _pinger(self, conn: Connection) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            if not self._is_stalled(conn) and not conn.transport.is_closing():
                await conn.ws.ping(b"heartbeat")
