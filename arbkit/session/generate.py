"""Generate a session without sockets: the embedded world recorded in virtual time.

`generate` runs the world's models — the seeded `PricePath`, every spot venue's true book and
server encoder (`arbkit.sim.spot`), the Kalshi `Exchange` with its lagging market makers and
the era's wire encoders — on a virtual clock (`arbkit.session.virtual.Scheduler`), and
records them through the very client code a live recording runs: `KalshiFeed`'s sans-I/O
protocol, each venue's `SpotFeed`, `RestBookPoller`, `MarketDiscovery`, `LiveIndex` (the
BRTI replica) and `OfficialTap`, all driven by `VirtualLink`, which records raw frames
through the runner's per-frame path. So the session has the raw frames a live recording of
the world would hold — receive times = world send time + a modelled delivery delay; REST
polls answered through the CDN cache at the poller's cadence; Kalshi's
``cfbenchmarks_value``; clock probes — and the same normalised tables, written by the same
parsers, plus ``kalshi_markets`` from discovery.

Rates for accelerated generation (defaults, all in `GenerateConfig`; the live world's in
brackets): the Kalshi exchange steps every 250 ms (50 ms); makers requote 0.3 times a second
per market (2), trades 0.05/s (0.2); spot venues step and publish every 2 s (50 ms) at a
quarter of their change rates; the replica and the world's reference BRTI are computed once a
second (200 ms); REST polls every 5 s per market (1 s). About 60 raw frames per virtual
second in all (live: ~450).

Two processes, one per core: `generate` runs the Kalshi side (exchange, makers, WebSocket
frames, REST polls, discovery, clock probes) here and the spot side (venue frames, spot feeds,
the replica) in a child interpreter (`spot_worker`), each with its own `SessionWriter` in its
own directory; the child's tables are moved into the session at the end (`absorb_session`).
The Kalshi side steps its own copy of the spot venues' true books (no frames) for the
reference BRTI its makers follow; the child hears, one 60-s chunk at a time, the official
ticks the Kalshi feed received, so the replica's ``official_e8`` is what one process writes.
Every random stream is seeded per side, so the session is the same as `Generation` writes in
one process (`Side.ALL`, which the tests use to look inside).

Faults (`FaultPlan` spec, as ``arbkit sim --faults``) apply as in the world: ``gap``/``dup``/
``malformed`` per frame (the servers' own fault code on the spot side, `KalshiWsPeer` on
Kalshi's), ``drop`` as disconnects with reconnect backoff, ``http429``/``http5xx`` on REST,
venue faults (``corrupt``, ``crossed``) through the spot servers. Not modelled here:
``stall``, ``slow``, ``error25``, ``refuse``.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import queue
import random
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from arbkit import __version__
from arbkit.core.clock import ClockOffset
from arbkit.core.config import VENUES, Endpoint, Endpoints
from arbkit.core.errors import ConfigError
from arbkit.core.retry import Backoff
from arbkit.core.storage import MANIFEST, SessionWriter, absorb_session
from arbkit.index.live import LiveIndex, OfficialTap
from arbkit.session.kalshi_peer import FaultCounts, KalshiRestPeer, KalshiWsPeer
from arbkit.session.virtual import NS, Scheduler, VirtualLink, drive
from arbkit.sim.faults import FaultPlan
from arbkit.sim.kalshi.exchange import Exchange
from arbkit.sim.kalshi.markets import IndexTape
from arbkit.sim.kalshi.wire import ERAS, Wire
from arbkit.sim.path import PricePath
from arbkit.sim.spot.server import Conn, VenueServer
from arbkit.sim.spot.sim import SpotSim
from arbkit.venues.kalshi.discovery import MarketChange, MarketDiscovery
from arbkit.venues.kalshi.markets import BTC_SERIES
from arbkit.venues.kalshi.poller import RestBookPoller
from arbkit.venues.kalshi.rest import KalshiRest
from arbkit.venues.kalshi.ws import KalshiFeed
from arbkit.venues.runner import HttpGet

DEFAULT_START_NS = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp()) * NS
"""Generated sessions start here unless told otherwise (a fixed instant: same seed, same
session)."""
BASE_URL = "http://generated.invalid"
"""The world's address as the recorded ``connect`` frames name it (no socket is opened)."""
KALSHI_WS_URL = "ws://generated.invalid/trade-api/ws/v2"
KALSHI_REST_URL = "http://generated.invalid/trade-api/v2"
PING_INTERVAL_NS = 10 * NS
CLOCK_PROBE_NS = 10 * NS
CHUNK_NS = 60 * NS
"""Virtual time run between progress reports and writer ticks."""

Progress = Callable[[float, float], None]
"""Called with (virtual seconds done, virtual seconds in all)."""


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate: length, seed, faults, and the world's knobs (see the module doc)."""

    hours: float = 1.0
    seed: int = 1
    faults: str = ""
    out: Path = field(default_factory=lambda: Path("data/recordings"))
    session_id: str | None = None
    start_ns: int = DEFAULT_START_NS
    series: Sequence[str] = BTC_SERIES
    venues: Sequence[str] = VENUES
    era: str = "current"
    horizon_s: float = 2 * 3600.0
    maker_lag_s: float = 5.0
    """How late the market makers follow fair value (the edge a fast reader can take)."""
    rest_cache_s: float = 15.0
    """How old a CDN-cached REST order book may be."""
    rest_interval_s: float = 5.0
    ws_delay_ms: float = 3.0
    """Median Kalshi WebSocket delivery delay (lognormal, sigma 0.5)."""
    spot_delay_ms: float = 15.0
    rest_rtt_ms: float = 40.0
    world_tick_ms: float = 500.0
    """How often the Kalshi exchange steps (makers, trades, lifecycle)."""
    spot_tick_ms: float = 2000.0
    """How often the spot venues step and publish (live world: 50 ms)."""
    index_interval_s: float = 1.0
    maker_update_hz: float = 0.3
    trade_hz: float = 0.05
    spot_rate_scale: float = 0.1

    def validate(self) -> None:
        positive = {
            "--hours": self.hours,
            "rest interval": self.rest_interval_s,
            "world tick": self.world_tick_ms,
            "spot tick": self.spot_tick_ms,
            "index interval": self.index_interval_s,
        }
        for name, value in positive.items():
            if not value > 0 or not math.isfinite(value):
                msg = f"{name} must be a positive number, got {value:g}"
                raise ConfigError(msg)
        for name, value in {
            "--maker-lag": self.maker_lag_s,
            "--rest-cache": self.rest_cache_s,
        }.items():
            if not value >= 0 or not math.isfinite(value):
                msg = f"{name} must be zero or more seconds, got {value:g}"
                raise ConfigError(msg)
        if self.era not in ERAS:
            msg = f"unknown Kalshi wire era {self.era!r}: use one of {', '.join(ERAS)}"
            raise ConfigError(msg)
        unknown = [s for s in self.series if s not in BTC_SERIES]
        if unknown:
            msg = f"unknown series {unknown}: arbkit generates {', '.join(BTC_SERIES)}"
            raise ConfigError(msg)
        FaultPlan.parse(self.faults)
        if self.session_path.exists():
            msg = f"{self.session_path} already exists: choose another --out or --session-id"
            raise ConfigError(msg)

    @property
    def session_path(self) -> Path:
        return self.out / (self.session_id or self.default_session_id())

    def default_session_id(self) -> str:
        start = datetime.fromtimestamp(self.start_ns / NS, UTC)
        return f"{start:%Y%m%dT%H%M%SZ}-gen{self.seed}"


class _Pipe:
    """One direction of a connection: deliveries after a lognormal delay, never reordered."""

    def __init__(self, sched: Scheduler, rng: random.Random, median_ms: float) -> None:
        self.sched, self.rng = sched, rng
        self.mu = math.log(max(median_ms, 1e-3) * 1e6)
        self.last = 0

    def delay_ns(self) -> int:
        return int(math.exp(self.rng.gauss(self.mu, 0.5)))

    def send(self, fn: Callable[[], None]) -> None:
        t = max(self.sched.now + self.delay_ns(), self.last)
        self.last = t
        self.sched.at(t, fn)


class _SpotPeer:
    """A spot venue's server seen through one virtual connection at a time."""

    def __init__(self, gen: Generation, venue: str, server: VenueServer) -> None:
        self.gen, self.venue, self.server = gen, venue, server
        feed = gen.live.feeds[venue]
        self.app = web.Application()
        self.app.add_routes(server.routes(""))
        self.down = _Pipe(gen.sched, gen.spot_net_rng, gen.config.spot_delay_ms)
        self.up = _Pipe(gen.sched, gen.spot_net_rng, gen.config.spot_delay_ms)
        self._requests: dict[str, tuple[web.Request, Any]] = {}
        self.conn: Conn | None = None
        # A server closes a client (missed heartbeats, ...) through `drop`, which closes the
        # socket; here there is none, so the connection ends after what was already sent.
        setattr(server, "drop", self._server_drop)  # noqa: B010
        self.link = VirtualLink(
            feed,
            gen.writer,
            gen.sched,
            send=self.send,
            on_open=self.open,
            on_drop=self.drop,
            fetch=self.fetch,
            backoff=gen.backoff(venue),
        )

    def _request(self, url: str) -> tuple[web.Request, Any]:
        """The request (and its route) a GET of ``url`` is, built once per URL: aiohttp's
        mocked requests cost milliseconds, and a feed asks for the same few URLs all day."""
        hit = self._requests.get(url)
        if hit is None:
            if len(self._requests) > 256:
                self._requests.clear()
            hit = self._requests[url] = self._build_request(url)
        return hit

    def _build_request(self, url: str) -> tuple[web.Request, Any]:
        parts = urlsplit(url)
        path = parts.path.removeprefix(f"/{self.venue}") + (
            f"?{parts.query}" if parts.query else ""
        )
        req = make_mocked_request("GET", path, app=self.app)
        match = drive(self.app.router.resolve(req))
        return make_mocked_request("GET", path, app=self.app, match_info=dict(match)), match

    def open(self, conn_id: int) -> None:
        request, _ = self._request(self.link.protocol.url())
        conn = Conn(self.server, cast(Any, None), request)
        self.conn = conn
        drop = self.server.faults.get("drop")
        if drop > 0:
            at = self.gen.sched.now + int(self.server.rng.expovariate(1.0 / drop) * NS)
            self.gen.sched.at(at, lambda: self._drop_at(conn))
        self.server.conns.add(conn)
        self.server.on_open(conn)
        self.drain()

    def _server_drop(self, conn: Conn) -> None:
        conn.closing = True
        self.down.send(partial(self._drop_at, conn))

    def _drop_at(self, conn: Conn) -> None:
        if conn is self.conn:
            self.link.close("closed by server (code 1000)")

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.closing = True
            self.server.conns.discard(self.conn)
            self.conn = None

    def send(self, text: str, _t: int) -> None:
        conn = self.conn

        def arrive() -> None:
            if conn is None or conn is not self.conn:
                return
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                self.server.on_bad_message(conn, text)
            else:
                if isinstance(obj, dict):
                    self.server.on_message(conn, obj)
                else:
                    self.server.on_bad_message(conn, text)
            self.drain()

        self.up.send(arrive)

    def drain(self) -> None:
        conn = self.conn
        if conn is None:
            return
        queue = conn.queue
        while not queue.empty():
            text = queue.get_nowait()
            if text is None:
                self.down.send(partial(self._drop_at, conn))
                return
            self.down.send(partial(self._deliver, conn, text))

    def _deliver(self, conn: Conn, text: str) -> None:
        if conn is self.conn:
            self.link.deliver(text)

    def fetch(self, request: HttpGet, t: int) -> tuple[int, str, int]:
        req, match = self._request(request.url)
        try:
            resp = drive(match.handler(req))
            status, text = resp.status, resp.text or ""
        except web.HTTPException as exc:
            status, text = exc.status, exc.text or ""
        return status, text, t + int(self.gen.config.rest_rtt_ms * 1e6)


class Side(StrEnum):
    """What one generation process runs: the whole world, or one side of it (see `generate`)."""

    ALL = "all"
    KALSHI = "kalshi"
    """The Kalshi exchange, its peers and clients; the spot venues' true books only (for the
    reference BRTI the makers follow), no spot frames."""
    SPOT = "spot"
    """The spot venues, their feeds and the replica (``index``); official ticks come in."""


Official = tuple[int, int, int]
"""An official BRTI tick as the client received it: (recv_ns, time_ns, value_e8)."""


class _OfficialOut:
    """Collects the official ticks the Kalshi side receives, for the spot side's replica."""

    def __init__(self, sched: Scheduler) -> None:
        self.sched = sched
        self.ticks: list[Official] = []

    def official(self, time_ns: int, value_e8: int) -> None:
        self.ticks.append((self.sched.now, time_ns, value_e8))

    def take(self) -> list[Official]:
        ticks, self.ticks = self.ticks, []
        return ticks


class Generation:
    """One generation run: the world, the client side and the schedule that joins them.

    `generate` is the usual entry; tests keep the object to compare the recorded books with
    the world's true ones (`exchange`) and the client's (`feed`) after `run`. ``side`` and
    ``session_id`` serve `generate`'s two processes; the default runs everything here.
    """

    def __init__(
        self, config: GenerateConfig, side: Side = Side.ALL, session_id: str | None = None
    ) -> None:
        self.config = c = config
        self.side = side
        kalshi, spot = side != Side.SPOT, side != Side.KALSHI
        self.start = c.start_ns
        self.end = c.start_ns + int(c.hours * 3600 * NS)
        self.sched = sched = Scheduler(c.start_ns)
        plan = FaultPlan.parse(c.faults)
        self.net_rng = random.Random(f"{c.seed}:net")
        self.spot_net_rng = random.Random(f"{c.seed}:spot-net")
        self.counts = FaultCounts()
        price = PricePath(c.seed, c.start_ns)
        # The spot side computes no reference BRTI (only the Kalshi world reads it).
        index_ms = int(c.index_interval_s * 1000) if kalshi else int(c.hours * 3600e3) + 1000
        self.spot = SpotSim(
            path=price,
            seed=c.seed,
            venues=c.venues,
            faults=plan,
            now_ns=sched.clock,
            tick_ms=c.spot_tick_ms,
            rate_scale=c.spot_rate_scale,
            index_interval_ms=index_ms,
            autostep=False,
        )
        self.endpoints = Endpoints(
            kalshi=Endpoint(ws=KALSHI_WS_URL, rest=KALSHI_REST_URL),
            venues=self.spot.endpoints(BASE_URL),
        )
        self.writer = SessionWriter.create(
            c.out,
            session_id or c.session_path.name,
            meta=self._meta(),
            max_rows=250_000,
            flush_interval=15.0,
        )
        self.clock = ClockOffset()
        self.officials = _OfficialOut(sched)
        self.spot_peers: list[_SpotPeer] = []
        if spot:
            self.live = LiveIndex(self.endpoints.venues, self.writer, interval_s=c.index_interval_s)
            self.spot_peers = [_SpotPeer(self, v, s) for v, s in self.spot.servers.items()]
        if kalshi:
            self._kalshi_side(plan)

    def _kalshi_side(self, plan: FaultPlan) -> None:
        c, sched = self.config, self.sched
        self.exchange = Exchange(
            IndexTape(self._reference),
            seed=c.seed,
            legacy_grid=c.era != "current",
            lag_s=c.maker_lag_s,
            noise=0.01,
            update_hz=c.maker_update_hz,
            trade_hz=c.trade_hz,
            annual_vol=0.55,
            ladder=5,
        )
        self.wire = Wire(c.era)  # type: ignore[arg-type]
        self.kalshi_faults = plan.for_target("kalshi")
        self.kalshi_rng = random.Random(f"{c.seed}:kalshi-faults")
        # --- the client side, exactly as `session.record` wires it ---------------------
        # (the replica of the spot side hears the official ticks; in one process directly)
        hears = self.live if self.side == Side.ALL else cast(LiveIndex, self.officials)
        self.feed = KalshiFeed(
            OfficialTap(self.writer, hears), KALSHI_WS_URL, on_lifecycle=self._look_again
        )
        rtt_rng = random.Random(f"{c.seed}:rest")
        rtt_mu = math.log(c.rest_rtt_ms * 1e6)
        self.rest = KalshiRestPeer(
            self.exchange,
            self.wire,
            self.kalshi_faults,
            self.kalshi_rng,
            sched.clock,
            self.writer,
            cache_s=c.rest_cache_s,
            rtt_ns=lambda: int(math.exp(rtt_rng.gauss(rtt_mu, 0.4))),
            counts=self.counts,
        )
        client = cast(KalshiRest, self.rest)
        self.poller = RestBookPoller(client, self.writer, interval=c.rest_interval_s)
        self.discovery = MarketDiscovery(
            client,
            c.series,
            on_change=self._on_change,
            sink=self.writer,
            clock=sched.clock,
            horizon=c.horizon_s,
            recv_clock=sched.clock,
        )
        self.ws_peer: KalshiWsPeer | None = None
        self.k_down = _Pipe(sched, self.net_rng, c.ws_delay_ms)
        self.k_up = _Pipe(sched, self.net_rng, c.ws_delay_ms)
        self.k_link = VirtualLink(
            self.feed,
            self.writer,
            sched,
            send=self._k_send,
            on_open=self._k_open,
            on_drop=self._k_drop,
            backoff=self.backoff("kalshi"),
        )
        self._discovery_at: int | None = None

    def _meta(self) -> dict[str, Any]:
        c = self.config
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(c).items()}
        config["series"], config["venues"] = list(c.series), list(c.venues)
        return {
            "env": "sim",
            "generated": True,
            "start_ns": c.start_ns,
            "series": list(c.series),
            "endpoints": self.endpoints.to_dict(),
            "config": config,
            "versions": {"arbkit": __version__},
        }

    def backoff(self, stream: str) -> Backoff:
        """A stream's reconnect backoff, seeded (the runner's is not: live needs no replay)."""
        return Backoff(rng=random.Random(f"{self.config.seed}:{stream}:backoff"))

    def _reference(self, t_ns: int) -> float | None:
        value = self.spot.reference_index(t_ns)
        return None if value is None else float(value)

    # --- Kalshi WebSocket ----------------------------------------------------------------

    def _k_open(self, _conn_id: int) -> None:
        self.ws_peer = KalshiWsPeer(
            self.exchange,
            self.wire,
            self.kalshi_faults,
            self.kalshi_rng,
            self._k_out,
            self.counts,
        )

    def _k_drop(self) -> None:
        self.ws_peer = None

    def _k_out(self, text: str) -> None:
        peer, link = self.ws_peer, self.k_link
        self.k_down.send(lambda: link.deliver(text) if self.ws_peer is peer else None)

    def _k_send(self, text: str, _t: int) -> None:
        peer = self.ws_peer

        def arrive() -> None:
            if peer is not None and peer is self.ws_peer:
                peer.command(text)

        self.k_up.send(arrive)

    # --- discovery, markets, REST ----------------------------------------------------------

    def _on_change(self, change: MarketChange) -> None:
        now = self.sched.now
        self.poller.apply(change)
        if change.added:
            self.feed.add_markets((m.ticker for m in change.added), now)
            self.k_link.flush()
        if change.removed:
            self.feed.remove_markets(change.removed, now)
            self.k_link.flush()

    def _look_again(self, _row: object) -> None:
        self._schedule_discovery(self.sched.now + NS // 5)

    def _schedule_discovery(self, at: int) -> None:
        if self._discovery_at is not None and self._discovery_at <= at:
            return
        self._discovery_at = at
        self.sched.at(at, lambda: self._discover(at))

    def _discover(self, at: int) -> None:
        if self._discovery_at != at:
            return
        self._discovery_at = None
        drive(self.discovery.refresh())
        self._schedule_discovery(self.sched.now + int(self.discovery.next_delay() * NS))

    def _poll_round(self, t: int) -> None:
        for i, ticker in enumerate(sorted(self.poller.markets)):
            self.sched.at(t + i * 10_000_000, partial(self._poll, ticker))

    def _poll(self, ticker: str) -> None:
        if ticker in self.poller.markets:
            drive(self.poller.poll(ticker, intended_ns=self.sched.now))

    def _probe(self, _t: int) -> None:
        sent, server, recv = self.rest.clock_probe()
        self.clock.add(sent, server, recv)

    # --- the world -----------------------------------------------------------------------

    def _spot_step(self, t: int) -> None:
        self.spot.step(t)
        for peer in self.spot_peers:
            peer.drain()

    def _step(self, t: int) -> None:
        events = self.exchange.step(t)
        if self.ws_peer is not None and events:
            self.ws_peer.dispatch(events)

    def _index(self, t: int) -> None:
        self.live.compute(t, grid_ns=t)

    def _ping(self, _t: int) -> None:
        if self.k_link.is_open:
            self.k_link.alive()

    def _kalshi_drops(self) -> None:
        mean = self.kalshi_faults.get("drop")
        if mean <= 0:
            return
        rng = random.Random(f"{self.config.seed}:kalshi-drops")

        def drop() -> None:
            self.k_link.close("closed by server (code 1006)")
            self.sched.at(self.sched.now + int(rng.expovariate(1 / mean) * NS), drop)

        self.sched.at(self.start + int(rng.expovariate(1 / mean) * NS), drop)

    def hear_officials(self, ticks: list[Official]) -> None:
        """The spot side: the replica hears these official ticks at their receive times."""
        live = self.live
        for recv, time_ns, value in ticks:
            self.sched.at(recv, partial(live.official, time_ns, value))

    def _schedule(self) -> None:
        c, sched, start = self.config, self.sched, self.start
        kalshi, spot = self.side != Side.SPOT, self.side != Side.KALSHI
        self._spot_step(start)
        if kalshi:
            self._step(start)
            self._probe(start)
            self._discover_first()
            self.k_link.connect()
        for peer in self.spot_peers:
            peer.link.connect()
        spot_tick = int(c.spot_tick_ms * 1e6)
        sched.every(start + spot_tick, spot_tick, self._spot_step)
        if spot:
            interval = int(c.index_interval_s * NS)
            sched.every((start // interval + 1) * interval, interval, self._index)
        if kalshi:
            tick = int(c.world_tick_ms * 1e6)
            sched.every(start + tick, tick, self._step)
            rest = int(c.rest_interval_s * NS)
            sched.every(start + rest // 2, rest, self._poll_round)
            sched.every(start + CLOCK_PROBE_NS, CLOCK_PROBE_NS, self._probe)
            sched.every(start + PING_INTERVAL_NS, PING_INTERVAL_NS, self._ping)
            self._kalshi_drops()

    def run(
        self,
        progress: Progress | None,
        *,
        before: Callable[[int], None] | None = None,
        after: Callable[[int], None] | None = None,
    ) -> Path:
        """Run to the end; ``before(t)`` / ``after(t)`` around each chunk ending at ``t``."""
        wall = time.monotonic()
        try:
            self._schedule()
            total = (self.end - self.start) / NS
            t = self.start
            while t < self.end:
                t = min(t + CHUNK_NS, self.end)
                if before is not None:
                    before(t)
                self.sched.run_until(t)
                self.writer.tick()
                if after is not None:
                    after(t)
                if progress is not None:
                    progress((t - self.start) / NS, total)
        finally:
            if self.side != Side.SPOT:
                self.writer.update_meta(
                    clock_offset=self.clock.to_dict(),
                    markets=sorted(self.feed.markets | set(self.poller.markets)),
                    duration_s=round((self.end - self.start) / NS, 3),
                    generation={
                        "wall_s": round(time.monotonic() - wall, 3),
                        "injected": asdict(self.counts),
                    },
                )
            self.writer.close()
            _set_end(self.writer.path, self.end)
        return self.writer.path

    def _discover_first(self) -> None:
        self._discovery_at = self.start
        self._discover(self.start)


def _set_end(path: Path, end_ns: int) -> None:
    """The session ends at its virtual end, not at the wall-clock moment it was written."""
    manifest = path / MANIFEST
    data = orjson.loads(manifest.read_bytes())
    data["end_ns"] = end_ns
    manifest.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def spot_worker() -> None:
    """The second process of `generate` (``python -c``; see `_TwoSides`): the spot side.

    Reads the pickled config and session id from stdin, then one list of official ticks per
    chunk; writes pickled ``("progress", done)`` per chunk, then ``("done", None)`` or
    ``("error", traceback)``, to stdout (anything printed goes to stderr instead)."""
    inbox, outbox = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr

    def put(kind: str, value: object) -> None:
        pickle.dump((kind, value), outbox)
        outbox.flush()

    try:
        config, session_id = pickle.load(inbox)
        gen = Generation(config, Side.SPOT, session_id)
        gen.run(
            lambda done, _total: put("progress", done),
            before=lambda _t: gen.hear_officials(pickle.load(inbox)),
        )
    except BaseException:
        put("error", traceback.format_exc())
        raise
    put("done", None)


_WORKER = "from arbkit.session.generate import spot_worker; spot_worker()"


class _TwoSides:
    """`generate`'s split: this process runs the Kalshi side, a child (`spot_worker`) the spot
    side; one chunk of official ticks goes over per chunk, so the child runs at most a chunk
    behind. A fresh interpreter, not `multiprocessing`: no fork of a threaded process, and no
    re-import of the caller's script."""

    def __init__(self, config: GenerateConfig, progress: Progress | None) -> None:
        self.config, self.progress = config, progress
        self.part_id = f".{config.session_path.name}.spot"
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.spot_done = 0.0
        self.total = config.hours * 3600
        self.mine = 0.0

    def _start(self) -> subprocess.Popen[bytes]:
        root = str(Path(__file__).resolve().parents[2])  # where this very arbkit lives
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        child = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        assert child.stdin is not None
        assert child.stdout is not None
        self.stdin, self.stdout = child.stdin, child.stdout
        out = child.stdout

        def read() -> None:
            with contextlib.suppress(EOFError, OSError, pickle.UnpicklingError):
                while True:
                    self.messages.put(pickle.load(out))
            self.messages.put(("exit", None))

        self.reader = threading.Thread(target=read, name="arbkit-generate-spot", daemon=True)
        self.reader.start()
        self._send((self.config, self.part_id))
        return child

    def _send(self, obj: object) -> None:
        with contextlib.suppress(BrokenPipeError):  # a dead child says why on its way out
            pickle.dump(obj, self.stdin)
            self.stdin.flush()

    def _message(self, block: bool) -> bool:
        """Take one message from the child; False when there was none (non-blocking)."""
        try:
            kind, value = self.messages.get(block=block)
        except queue.Empty:
            return False
        if kind == "error":
            msg = f"the spot generation process failed:\n{value}"
            raise RuntimeError(msg)
        if kind == "exit" and self.spot_done != math.inf:
            msg = "the spot generation process ended before its work was done"
            raise RuntimeError(msg)
        self.spot_done = math.inf if kind == "done" else value
        self._report()
        return True

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(min(self.mine, self.spot_done, self.total), self.total)

    def _mine(self, done: float, _total: float) -> None:
        self.mine = done
        while self._message(block=False):
            pass
        self._report()

    def run(self) -> Path:
        config = self.config
        part = config.out / self.part_id
        shutil.rmtree(part, ignore_errors=True)  # ours, left by a run that was killed
        child = self._start()
        try:
            gen = Generation(config, Side.KALSHI)
            path = gen.run(self._mine, after=lambda _t: self._send(gen.officials.take()))
            while self.spot_done != math.inf:
                self._message(block=True)
            child.wait()
            absorb_session(path, part)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            self.stdin.close()
            self.reader.join()
            self.stdout.close()
            if part.exists():
                shutil.rmtree(part, ignore_errors=True)
        return path


def generate(config: GenerateConfig, *, progress: Progress | None = None) -> Path:
    """Write one generated session (see the module docstring); returns its path.

    Two processes (two cores): this one runs the Kalshi side, a child the spot venues and the
    replica, each into its own directory, merged at the end (`absorb_session`). Deterministic
    for a config: the same seed, start and knobs give the same frames and rows — the same as
    one process (`Generation` with `Side.ALL`) writes.
    """
    config.validate()
    return _TwoSides(config, progress).run()
