"""The spot side of the embedded world: every BRTI venue on loopback plus the reference BRTI.

`SpotSim` owns one true book per venue (quoting around the world's `PricePath` with the
venue's own spread, depth, noise and lag), steps them on a timer, streams the changes through
each venue's real protocol, and computes the world's *reference* BRTI every 200 ms with the
index methodology (`arbkit.index.rti`) from the true books as each venue's public feed shows
them (its published depth; LMAX's last throttled book), as CF sees them, with no transport and
no faults. `arbkit.sim.world` wires `reference_index` / `on_index` into the Kalshi server's
``cfbenchmarks_value``.

All venues share one aiohttp app under per-venue path prefixes (``/coinbase/...``), either
the sim's own (`start`) or one the caller owns (`setup`).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

from aiohttp import web

from arbkit.core.book import ASK, BID, BookView
from arbkit.core.clock import now_ns as wall_ns
from arbkit.core.config import VENUES, Endpoint
from arbkit.core.errors import ConfigError
from arbkit.core.fixed import SPOT_DIGITS, to_decimal
from arbkit.index.rti import PARAMS, RtiCalculator, RtiResult
from arbkit.sim.faults import STALL_FOR_S, FaultPlan
from arbkit.sim.path import PricePath
from arbkit.sim.spot.bitstamp import BitstampServer
from arbkit.sim.spot.book import VenueBook, VenueParams
from arbkit.sim.spot.bullish import BullishServer
from arbkit.sim.spot.coinbase import CoinbaseServer
from arbkit.sim.spot.cryptocom import CryptocomServer
from arbkit.sim.spot.gemini import GeminiServer
from arbkit.sim.spot.kraken import KrakenServer
from arbkit.sim.spot.lmax import LmaxServer
from arbkit.sim.spot.paxos import PaxosServer
from arbkit.sim.spot.server import VenueServer

SERVERS: dict[str, type[VenueServer]] = {
    cls.name: cls
    for cls in (
        CoinbaseServer,
        KrakenServer,
        BitstampServer,
        GeminiServer,
        CryptocomServer,
        BullishServer,
        LmaxServer,
        PaxosServer,
    )
}

_CENT = 1_000_000  # $0.01 in e8
DEFAULT_PARAMS: dict[str, VenueParams] = {
    "coinbase": VenueParams(
        half_spread_bps=0.005, levels=500, mean_gap_ticks=110, mean_size_btc=0.015, rate=30
    ),
    "kraken": VenueParams(
        tick_e8=10 * _CENT,
        half_spread_bps=0.05,
        levels=500,
        mean_gap_ticks=12,
        mean_size_btc=0.02,
        delay_ms=30,
        rate=25,
    ),
    "bitstamp": VenueParams(
        half_spread_bps=0.3,
        levels=400,
        mean_gap_ticks=150,
        mean_size_btc=0.02,
        delay_ms=80,
        rate=15,
    ),
    "gemini": VenueParams(
        half_spread_bps=0.2,
        levels=400,
        mean_gap_ticks=150,
        mean_size_btc=0.015,
        delay_ms=60,
        rate=12,
    ),
    "cryptocom": VenueParams(
        lot_e8=1000,
        half_spread_bps=0.1,
        levels=300,
        mean_gap_ticks=120,
        mean_size_btc=0.02,
        delay_ms=40,
        rate=30,
    ),
    "bullish": VenueParams(
        half_spread_bps=0.25,
        levels=300,
        mean_gap_ticks=150,
        mean_size_btc=0.02,
        delay_ms=100,
        rate=10,
    ),
    "lmax": VenueParams(
        lot_e8=10_000,
        half_spread_bps=0.4,
        levels=200,
        mean_gap_ticks=200,
        mean_size_btc=0.05,
        delay_ms=150,
        rate=8,
    ),
    "paxos": VenueParams(
        half_spread_bps=0.8,
        levels=300,
        mean_gap_ticks=200,
        mean_size_btc=0.015,
        delay_ms=250,
        rate=5,
    ),
}
"""Per-venue quoting defaults: plausible spreads/lags; depth gives a BRTI v_T of tens of BTC."""

_S = 1_000_000_000
_log = logging.getLogger(__name__)


class SpotSim:
    """Every spot venue of the world, their true books and the reference BRTI.

    Knobs: ``tick_ms`` (how often books step and frames go out), ``rate_scale`` (multiplies
    each venue's ordinary changes per second, `VenueParams.rate`; re-centring on the path adds
    more), ``fast`` (load mode: 10 ms ticks, 20x the changes), ``params`` (per-venue
    `VenueParams` overrides), ``index_interval_ms`` (reference BRTI cadence, CF's 200 ms),
    ``history_s`` (how much reference series is kept), ``on_index`` (called with every
    reference tick: the hook for Kalshi's ``cfbenchmarks_value``), ``autostep`` (False: nothing
    moves until `step` is called, for tests on a manual clock). Faults come from ``faults``
    (per venue via `FaultPlan.for_target`; ``crossed`` is a chance per step of a one-second
    crossed episode) and from `inject`.
    """

    def __init__(
        self,
        *,
        path: PricePath,
        seed: int,
        venues: Sequence[str] = VENUES,
        faults: FaultPlan | None = None,
        now_ns: Callable[[], int] = wall_ns,
        tick_ms: float = 50.0,
        rate_scale: float = 1.0,
        fast: bool = False,
        params: Mapping[str, VenueParams] | None = None,
        index_interval_ms: int = 200,
        history_s: int = 86_400,
        on_index: Callable[[int, RtiResult], None] | None = None,
        autostep: bool = True,
    ) -> None:
        unknown = [v for v in venues if v not in SERVERS]
        if unknown:
            msg = f"unknown spot venue(s) {unknown}: choose from {sorted(SERVERS)}"
            raise ConfigError(msg)
        if fast:  # load mode: many more changes, stepped more often
            tick_ms, rate_scale = min(tick_ms, 10.0), rate_scale * 20
        self.path = path
        self.seed = seed
        self.now_ns = now_ns
        self.tick_s = tick_ms / 1000
        self.plan = faults or FaultPlan()
        self.rng = random.Random(f"{seed}:spot")
        self.index_interval_ns = index_interval_ms * 1_000_000
        self.on_index = on_index
        self.autostep = autostep
        self.max_points = max(1, history_s * _S // self.index_interval_ns)
        merged = {**DEFAULT_PARAMS, **(params or {})}
        now = now_ns()
        self.servers: dict[str, VenueServer] = {}
        self._stall_until: dict[str, int] = {}
        self._next_stall: dict[str, int | None] = {}
        for venue in venues:
            vp = merged[venue]
            book = VenueBook(venue, replace(vp, rate=vp.rate * rate_scale), path, seed)
            book.step(now, 0.0)
            faults_v = self.plan.for_target(venue)
            self.servers[venue] = SERVERS[venue](book, faults_v, now_ns=now_ns)
            self._stall_until[venue] = 0
            self._next_stall[venue] = self._draw_stall(venue, now)
        self._rti = RtiCalculator(params=PARAMS["BRTI"])
        self._index_t: list[int] = []
        self._index_v: list[int | None] = []
        self.last_result: RtiResult | None = None
        self._next_index_ns = now + self.index_interval_ns
        self._last_step_ns = now
        self._task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None
        self.compute_index(now)

    # -- composition ----------------------------------------------------------------------
    def setup(self, app: web.Application, prefix: str = "") -> None:
        """Mount every venue under ``{prefix}/{venue}`` on ``app``; run with the app."""
        for venue, server in self.servers.items():
            app.router.add_routes(server.routes(f"{prefix}/{venue}"))
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)

    async def _on_startup(self, app: web.Application) -> None:
        if self.autostep:
            self._task = asyncio.create_task(self._run())

    async def _on_shutdown(self, app: web.Application) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.gather(*(s.close_all() for s in self.servers.values()))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port`` (0 = any free port) with the sim's own app."""
        app = web.Application()
        self.setup(app)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SpotSim:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def endpoints(self, base_url: str | None = None, prefix: str = "") -> dict[str, Endpoint]:
        """Each venue's configured WS URL and REST base (see each venue module's paths)."""
        base = base_url or self.base_url
        if base is None:
            msg = "the spot world is not serving: call start() or pass the base URL of your app"
            raise ConfigError(msg)
        base = base.rstrip("/") + prefix
        ws_base = "ws" + base.removeprefix("http")
        out = {}
        for venue, server in self.servers.items():
            ws_path, rest_path = server.endpoint_paths()
            out[venue] = Endpoint(
                ws=f"{ws_base}/{venue}{ws_path}", rest=f"{base}/{venue}{rest_path}"
            )
        return out

    # -- the clock ------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.step()
            except Exception:  # a bug in one step must not freeze the whole world
                _log.exception("spot world step failed; continuing")

    def step(self, now_ns: int | None = None) -> None:
        """Advance every venue to ``now_ns`` (default: the clock), stream, maybe index."""
        now = self.now_ns() if now_ns is None else now_ns
        dt = max(0.0, (now - self._last_step_ns) / _S)
        self._last_step_ns = now
        for venue, server in self.servers.items():
            if self._stalled(venue, now):
                continue
            book = server.book
            if server.faults.chance("crossed", self.rng):
                book.crossed_until_ns = now + _S
            changes = book.step(now, dt)
            if changes:
                server.publish(changes, now)
            server.on_tick(now)
        if now >= self._next_index_ns:
            self._next_index_ns = now + self.index_interval_ns
            self.compute_index(now)

    def _draw_stall(self, venue: str, now: int) -> int | None:
        mean = self.plan.for_target(venue).get("stall")
        return now + int(self.rng.expovariate(1 / mean) * _S) if mean > 0 else None

    def _stalled(self, venue: str, now: int) -> bool:
        nxt = self._next_stall[venue]
        if nxt is not None and now >= nxt:
            length = self.servers[venue].faults.get("stall_for", STALL_FOR_S)
            self._stall_until[venue] = now + int(length * _S)
            self._next_stall[venue] = self._draw_stall(venue, self._stall_until[venue])
        return now < self._stall_until[venue]

    # -- the reference BRTI ---------------------------------------------------------------
    def compute_index(self, now_ns: int) -> RtiResult:
        """The reference BRTI at ``now_ns`` from the true books as each venue's feed shows them
        (`VenueServer.published_view`), with no transport and no faults; appended to the
        series."""
        views = [s.published_view() for s in self.servers.values()]
        result = self._rti.calculate(views, now_ns)
        self.last_result = result
        if self._index_t and now_ns < self._index_t[-1]:
            now_ns = self._index_t[-1]  # keep the series ordered if the clock steps back
        self._index_t.append(now_ns)
        self._index_v.append(result.value_e8)
        if len(self._index_t) > self.max_points + self.max_points // 4:
            cut = len(self._index_t) - self.max_points
            del self._index_t[:cut], self._index_v[:cut]
        if self.on_index is not None:
            self.on_index(now_ns, result)
        return result

    def reference_index_e8(self, t_ns: int) -> int | None:
        """The latest reference value (e8) computed at or before ``t_ns``."""
        i = bisect.bisect_right(self._index_t, t_ns) - 1
        return self._index_v[i] if i >= 0 else None

    def reference_index(self, t_ns: int) -> Decimal | None:
        """The latest reference BRTI computed at or before ``t_ns`` (None if none/invalid)."""
        value = self.reference_index_e8(t_ns)
        return None if value is None else to_decimal(value, SPOT_DIGITS)

    def one_second_values(self, start_ns: int, end_ns: int) -> list[tuple[int, Decimal | None]]:
        """(second, value) at each whole second in ``[start_ns, end_ns)``: the one-second
        prints that settlement averages."""
        first = -(-start_ns // _S)
        return [(s, self.reference_index(s * _S)) for s in range(first, -(-end_ns // _S))]

    def reference_series(self) -> list[tuple[int, int | None]]:
        """Every retained (time_ns, value_e8) tick of the reference BRTI."""
        return list(zip(self._index_t, self._index_v, strict=True))

    # -- inspection and test hooks --------------------------------------------------------
    def ready(self) -> bool:
        """Every venue's true book is quoted on both sides (what its feed will snapshot)."""
        return all(s.book.levels(BID, 1) and s.book.levels(ASK, 1) for s in self.servers.values())

    def server(self, venue: str) -> VenueServer:
        try:
            return self.servers[venue]
        except KeyError:
            msg = f"venue {venue!r} is not in this world: it has {sorted(self.servers)}"
            raise ConfigError(msg) from None

    def true_view(self, venue: str) -> BookView:
        """The venue's true book (what a perfect client would hold)."""
        return self.server(venue).book.view()

    def inject(self, venue: str, fault: str, *, seconds: float = 5.0) -> None:
        """Break a venue on purpose now.

        Frame faults (``gap``, ``dup``, ``malformed``, ``corrupt``) hit the next frame of each
        current connection; ``drop`` disconnects every client (Bitstamp: after
        ``bts:request_reconnect``), ``request_reconnect`` only asks; ``http429``, ``http5xx``,
        ``slow`` hit the next REST request; ``stall`` (no data, no heartbeats) and ``crossed``
        last ``seconds``.
        """
        server = self.server(venue)
        now = self.now_ns()
        if fault == "stall":
            self._stall_until[venue] = now + int(seconds * _S)
        elif fault == "crossed":
            server.book.crossed_until_ns = now + int(seconds * _S)
        else:
            server.inject(fault)

    def set_offset(self, venue: str, fraction: float) -> None:
        """Bias a venue's quotes by ``fraction`` of the price (0.1 = 10 % high: erroneous)."""
        self.server(venue).book.offset = fraction
