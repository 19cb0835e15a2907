"""The live pipeline that record, monitor, check and the notebook API all start.

One `Pipeline` runs, on one event loop, everything a latency study needs and writes it into
one `SessionWriter` (raw frames first, normalised tables beside them):

- Kalshi's WebSocket feed (books, tickers, trades, lifecycle, Kalshi's own BRTI ticks) for
  the open markets of the chosen series, following new markets as discovery finds them;
- market discovery (``kalshi_markets`` rows) and the series' fee metadata (``series_meta``);
- a REST book poller on the same markets (the "old way": unsigned, so a CDN may cache it);
- every chosen BRTI constituent's order-book feed and the replica computed from them (none
  with ``venues=()``: Kalshi alone);
- clock-offset probes against Kalshi.

Consumers hang off it without touching the wiring: `Pipeline.on_book`, `on_tick`,
`on_markets`, `on_row`, `on_raw` and `on_exchange` register small callbacks, called inside the event
loop as the pipeline sees each thing (keep them short; they must not raise).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from arbkit import __version__
from arbkit.core.clock import ClockOffset, now_ns
from arbkit.core.config import VENUES, Endpoints
from arbkit.core.errors import ArbkitError, ConfigError
from arbkit.core.events import EventRow, KalshiBookRow, KalshiLifecycleRow, RawFrame, Row
from arbkit.core.sink import NullSink, Sink
from arbkit.core.storage import SessionStatus, SessionWriter
from arbkit.index.live import LiveIndex, LiveTick, OfficialTap
from arbkit.session.environment import Environment
from arbkit.venues.kalshi.auth import Signer
from arbkit.venues.kalshi.discovery import MarketChange, MarketDiscovery
from arbkit.venues.kalshi.limiter import TokenBucket
from arbkit.venues.kalshi.markets import BTC_SERIES
from arbkit.venues.kalshi.poller import RestBookPoller
from arbkit.venues.kalshi.protocol import STREAM as KALSHI_WS
from arbkit.venues.kalshi.rest import ExchangeStatus, KalshiApiError, KalshiRest
from arbkit.venues.kalshi.ws import KalshiFeed

CLOCK_PROBE_INTERVAL_S = 10.0

BookListener = Callable[[KalshiBookRow], None]
TickListener = Callable[[LiveTick], None]
MarketListener = Callable[[MarketChange], None]
RowListener = Callable[[Row], None]
ExchangeListener = Callable[[int, ExchangeStatus], None]
RawListener = Callable[[str, RawFrame], None]


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline follows and where the session goes."""

    series: Sequence[str] = BTC_SERIES
    rest_interval: float = 1.0
    venues: Sequence[str] = VENUES
    """Spot venues of the BRTI replica; empty records Kalshi alone (no replica)."""
    horizon_s: float | None = 2 * 3600.0
    """Only markets closing within this many seconds (hourly ladders open days ahead)."""
    out: Path = field(default_factory=lambda: Path("data/recordings"))
    session_id: str | None = None

    def validate(self) -> None:
        if not self.rest_interval > 0:  # NaN too
            msg = f"--rest-interval must be positive, got {self.rest_interval:g} s"
            raise ConfigError(msg)
        if not self.series:
            msg = f"no series given: arbkit records {', '.join(BTC_SERIES)}"
            raise ConfigError(msg)
        unknown = [s for s in self.series if s not in BTC_SERIES]
        if unknown:
            msg = f"unknown series {unknown}: arbkit records {', '.join(BTC_SERIES)}"
            raise ConfigError(msg)
        bad = [v for v in self.venues if v not in VENUES]
        if bad:
            msg = f"unknown venue(s) {', '.join(bad)}: choose from {', '.join(VENUES)} or none"
            raise ConfigError(msg)
        if self.out.exists() and not self.out.is_dir():
            msg = f"--out {self.out} is a file, not a directory; give a directory for sessions"
            raise ConfigError(msg)

    def to_json(self) -> dict[str, Any]:
        """The config as typed JSON (lists, numbers, null) for ``session.json``."""
        return {
            "series": list(self.series),
            "rest_interval": self.rest_interval,
            "venues": list(self.venues),
            "horizon_s": self.horizon_s,
            "out": str(self.out),
            "session_id": self.session_id,
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """What the pipeline has seen so far (a snapshot; counts are since the start)."""

    elapsed_s: float
    markets: int
    """Markets the WebSocket feed follows."""
    valid_books: int
    ws_connected: bool
    ws_ever_connected: bool
    ws_frames: int
    ws_gaps: int
    ws_reconnects: int
    ws_auth_failures: int
    rest_polls: int
    spot_venues: int
    """Spot venues with a book now (of `spot_total`)."""
    spot_total: int
    spot_frames: int
    brti_e8: int | None
    """The latest replica value (None before the first or without spot venues)."""
    path: Path

    def line(self, total_s: float | None = None) -> str:
        """One status line for a terminal."""
        brti = "-" if self.brti_e8 is None else f"{self.brti_e8 / 1e8:,.2f}"
        total = "" if total_s is None else f"/{total_s:.0f}"
        ws = f"Kalshi WS {self.ws_frames} frames"
        if not self.ws_ever_connected:
            ws += f" (not connected, {self.ws_auth_failures} auth failures)"
        spot = (
            f"spot {self.spot_venues}/{self.spot_total} venues, {self.spot_frames} frames"
            if self.spot_total
            else "spot off"
        )
        return (
            f"[{self.elapsed_s:5.0f}{total} s] {ws}, {self.valid_books}/{self.markets} books "
            f"valid, {self.ws_gaps} gaps, {self.ws_reconnects} reconnects | REST "
            f"{self.rest_polls} requests | {spot} | BRTI {brti}"
        )


class _Tap:
    """A `Sink` passing everything on (to the writer, once started), each row to the
    listeners of its type and to those of every row, and each raw frame to the raw listeners."""

    def __init__(self) -> None:
        self.inner: Sink = NullSink()
        self.listeners: defaultdict[type[Row], list[RowListener]] = defaultdict(list)
        self.every: list[RowListener] = []
        self.raw: list[RawListener] = []

    def write(self, row: Row) -> None:
        self.inner.write(row)
        for listener in self.listeners.get(type(row), ()):
            listener(row)
        for listener in self.every:
            listener(row)

    def write_raw(self, stream: str, frame: RawFrame) -> None:
        self.inner.write_raw(stream, frame)
        for listener in self.raw:
            listener(stream, frame)

    def declare_stream(self, stream: str, parser: Mapping[str, Any]) -> None:
        self.inner.declare_stream(stream, parser)

    def count(self, stream: str, counter: str, n: int = 1) -> None:
        self.inner.count(stream, counter, n)


class Pipeline:
    """Kalshi feed, discovery, REST poller, live index, clock probes and the session writer.

    Use as an async context manager (or `start` / `stop`): leaving it normally closes the
    session ``closed``; an exception closes it ``failed`` with the error, a cancellation or
    Ctrl-C ``interrupted``. The components exist from construction (register listeners any
    time); the writer exists from `start`.
    """

    def __init__(
        self,
        config: PipelineConfig,
        environment: Environment,
        *,
        meta: dict[str, Any] | None = None,
        clock_probe_s: float = CLOCK_PROBE_INTERVAL_S,
    ) -> None:
        """Build every component (nothing connects yet); a bad config or missing key raises
        `ConfigError` here, before any session exists."""
        config.validate()
        credentials = environment.credentials
        if credentials is None:
            msg = (
                "Kalshi's WebSocket needs an API key: set KALSHI_API_KEY_ID and "
                "KALSHI_PRIVATE_KEY_PATH (or use --env sim)"
            )
            raise ConfigError(msg)
        signer = Signer.from_credentials(credentials)
        self.config = config
        self.environment = environment
        self.meta = meta or {}
        self.clock_probe_s = clock_probe_s
        self.clock = ClockOffset()
        self.series_meta: dict[str, Any] = {}
        """Per series: ``GET /series/{t}``'s ``series`` object and ``GET /series/fee_changes``'s
        body as received (None where the server had none); also in ``session.json``."""
        self.writer: SessionWriter | None = None
        self._closed = False
        self._ws_trouble: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._started = time.monotonic()
        self.started_ns: int | None = None
        """Wall-clock ns at `start` (the session's start)."""
        self._tick_listeners: list[TickListener] = []
        self._market_listeners: list[MarketListener] = []
        self._exchange_listeners: list[ExchangeListener] = []

        endpoints = self._endpoints()
        tap = self._tap = _Tap()
        tap.listeners[EventRow].append(self._watch_ws)  # type: ignore[arg-type]
        limiter = TokenBucket()  # one account budget shared by the signed and unsigned clients
        self.signed = KalshiRest(endpoints.kalshi.rest, signer=signer, limiter=limiter, sink=tap)
        self.unsigned = KalshiRest(endpoints.kalshi.rest, limiter=limiter, sink=tap)
        self.live: LiveIndex | None = None
        """The BRTI replica (None when recording Kalshi alone)."""
        feed_sink: Sink = tap
        if config.venues:
            self.live = LiveIndex(
                {v: endpoints.venues[v] for v in config.venues}, tap, on_tick=self._tick
            )
            feed_sink = OfficialTap(tap, self.live)
        self.poller = RestBookPoller(self.unsigned, tap, interval=config.rest_interval)

        # Discovery owns the market set (it applies the horizon); lifecycle messages only tell
        # it to look again, so a market that opens is followed within moments.
        def look_again(_row: KalshiLifecycleRow) -> None:
            self.discovery.request_refresh()

        self.feed = KalshiFeed(
            feed_sink, endpoints.kalshi.ws, signer=signer, on_lifecycle=look_again
        )
        self.discovery = MarketDiscovery(
            self.signed,
            config.series,
            on_change=self._markets_changed,
            sink=tap,
            horizon=config.horizon_s,
        )

    # -- listeners ------------------------------------------------------------------------

    def on_book(self, listener: BookListener) -> None:
        """Call ``listener`` with every Kalshi book row (snapshot level or delta) received;
        the book itself is ``pipeline.feed.books[row.market]``."""
        self._tap.listeners[KalshiBookRow].append(listener)  # type: ignore[arg-type]

    def on_tick(self, listener: TickListener) -> None:
        """Call ``listener`` with every replica calculation (never without venues)."""
        self._tick_listeners.append(listener)

    def on_markets(self, listener: MarketListener) -> None:
        """Call ``listener`` with every change of the followed market set."""
        self._market_listeners.append(listener)

    def on_row(self, listener: RowListener) -> None:
        """Call ``listener`` with every normalised row the pipeline writes (any table)."""
        self._tap.every.append(listener)

    def on_raw(self, listener: RawListener) -> None:
        """Call ``listener`` with ``(stream, frame)`` for every raw frame recorded: frames
        received, commands sent, connects and disconnects, each with its local time."""
        self._tap.raw.append(listener)

    def on_exchange(self, listener: ExchangeListener) -> None:
        """Call ``listener`` with ``(recv_ns, status)`` for every ``GET /exchange/status``
        answered (at the start, then with each clock probe)."""
        self._exchange_listeners.append(listener)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The session directory (after `start`)."""
        if self.writer is None:
            msg = "the pipeline has not started: no session yet"
            raise ArbkitError(msg)
        return self.writer.path

    async def start(self) -> Pipeline:
        """Create the session, then connect everything; a failure closes it ``failed``.
        Starting a started pipeline does nothing."""
        if self.writer is not None:
            return self
        config = self.config
        self.writer = SessionWriter.create(
            config.out,
            config.session_id,
            meta={
                **self.environment.describe(),
                "endpoints": self._endpoints().to_dict(),
                "series": list(config.series),
                "config": config.to_json(),
                "versions": {"arbkit": __version__},
                **self.meta,
            },
        )
        self._tap.inner = self.writer
        self._started = time.monotonic()
        self.started_ns = now_ns()
        try:
            await self._exchange_status()
            await self._series_meta()
            await self.discovery.refresh()  # reports the markets to _markets_changed
            if self.live is not None:
                await self.live.start()
        except BaseException as exc:
            await self.stop(**_outcome(exc))
            raise
        self._tasks = [
            asyncio.create_task(self.feed.run(stop=self._stop), name="kalshi-ws"),
            asyncio.create_task(self.poller.run(), name="kalshi-rest"),
            asyncio.create_task(self.discovery.run(), name="discovery"),
            asyncio.create_task(self._probe_clock(), name="clock"),
        ]
        return self

    def _endpoints(self) -> Endpoints:
        """The endpoints this session uses (Kalshi and the chosen venues)."""
        endpoints = self.environment.endpoints
        venues = {v: endpoints.venues[v] for v in self.config.venues}
        return Endpoints(kalshi=endpoints.kalshi, venues=venues)

    async def _series_meta(self) -> None:
        """``GET /series/{t}`` (fee_type, fee_multiplier, ...) and, where the server has it,
        ``GET /series/fee_changes``, recorded as received so backtests compute fees offline."""
        for series in self.config.series:
            entry: dict[str, Any] = {"series": None, "fee_changes": None}
            with contextlib.suppress(ArbkitError):
                entry["series"] = (await self.signed.get_json(f"/series/{series}"))["series"]
            with contextlib.suppress(KalshiApiError):
                entry["fee_changes"] = await self.signed.get_json(
                    "/series/fee_changes", {"series_ticker": series, "show_historical": "true"}
                )
            self.series_meta[series] = entry
        assert self.writer is not None
        self.writer.update_meta(series_meta=self.series_meta)

    async def stop(
        self, status: SessionStatus = SessionStatus.CLOSED, error: str | None = None
    ) -> Path:
        """Stop everything, record the closing facts and close the session as ``status``."""
        writer = self.writer
        if writer is None:
            msg = "the pipeline has not started: nothing to stop"
            raise ArbkitError(msg)
        if self._closed:
            return writer.path
        self._closed = True
        self._stop.set()  # ends the WebSocket feed; the loops are cancelled
        tasks, self._tasks = self._tasks, []
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.live is not None:
            await self.live.stop()
        await self.signed.close()
        await self.unsigned.close()
        writer.update_meta(
            clock_offset=self.clock.to_dict(),
            markets=sorted(self.feed.markets | set(self.poller.markets)),
            duration_s=round(time.monotonic() - self._started, 3),
        )
        writer.close(status=status, error=error)
        return writer.path

    async def __aenter__(self) -> Pipeline:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.writer is not None:
            await self.stop(**_outcome(exc))

    # -- running --------------------------------------------------------------------------

    def raise_if_failed(self) -> None:
        """Re-raise the error of a component that died (they run until stopped)."""
        for task in self._tasks:
            failure = task.exception() if task.done() and not task.cancelled() else None
            if failure is not None:
                raise failure

    async def run(
        self,
        seconds: float | None = None,
        *,
        stop: asyncio.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        progress_every: float = 5.0,
    ) -> None:
        """Keep the session going for ``seconds`` (None: until ``stop`` is set), flushing
        the writer and calling ``on_progress`` every ``progress_every`` seconds."""
        stop = stop or asyncio.Event()
        started = time.monotonic()
        next_progress = started + progress_every
        while not stop.is_set() and (seconds is None or time.monotonic() - started < seconds):
            self.raise_if_failed()
            assert self.writer is not None, "start the pipeline first"
            self.writer.tick()
            if on_progress is not None and time.monotonic() >= next_progress:
                next_progress += progress_every
                on_progress(self.progress())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.2)

    def progress(self) -> Progress:
        """A snapshot of what has been seen so far."""
        assert self.writer is not None
        counters = self.writer.counters
        ws = counters.get(KALSHI_WS, {})
        venues = self.config.venues
        tick = self.live.latest if self.live is not None else None
        return Progress(
            elapsed_s=time.monotonic() - self._started,
            markets=len(self.feed.markets),
            valid_books=len(self.feed.valid_books()),
            ws_connected=self.feed.connected,
            ws_ever_connected=self.ws_ever_connected,
            ws_frames=ws.get("frames", 0),
            ws_gaps=ws.get("gaps", 0),
            ws_reconnects=ws.get("reconnects", 0),
            ws_auth_failures=self.feed.auth_failures,
            rest_polls=counters.get("kalshi_rest", {}).get("requests", 0),
            spot_venues=len(venues) - len(self.live.missing()) if self.live else 0,
            spot_total=len(venues),
            spot_frames=sum(counters.get(v, {}).get("frames", 0) for v in venues),
            brti_e8=None if tick is None else tick.result.value_e8,
            path=self.path,
        )

    @property
    def ws_ever_connected(self) -> bool:
        """Whether Kalshi's WebSocket connected at least once."""
        return self.feed.conn_id > 0

    def ws_failure(self) -> str | None:
        """Why the session is unusable if Kalshi's WebSocket never connected, else None."""
        if self.ws_ever_connected:
            return None
        trouble = self._ws_trouble.get("auth") or self._ws_trouble.get("reconnect")
        why = f": {trouble}" if trouble else ""
        return f"Kalshi's WebSocket never connected{why}"

    # -- wiring ---------------------------------------------------------------------------

    def _watch_ws(self, row: EventRow) -> None:
        """Keep why Kalshi's WebSocket last failed (a refused key says most)."""
        if row.stream == KALSHI_WS and row.kind in ("auth", "reconnect"):
            self._ws_trouble[row.kind] = row.detail

    def _tick(self, tick: LiveTick) -> None:
        for listener in self._tick_listeners:
            listener(tick)

    def _markets_changed(self, change: MarketChange) -> None:
        self.poller.apply(change)
        if change.added:
            self.feed.add_markets(m.ticker for m in change.added)
        if change.removed:
            self.feed.remove_markets(change.removed)
        for listener in self._market_listeners:
            listener(change)

    async def _probe_clock(self) -> None:
        while True:
            await asyncio.sleep(self.clock_probe_s)
            with contextlib.suppress(ArbkitError):
                await self._exchange_status()

    async def _exchange_status(self) -> None:
        """``GET /exchange/status`` (a clock sample too), handed to the exchange listeners."""
        status = await self.signed.exchange_status(self.clock)
        recv_ns = now_ns()
        for listener in self._exchange_listeners:
            listener(recv_ns, status)


def _outcome(exc: BaseException | None) -> dict[str, Any]:
    """How a session ends, from what ended it: cleanly, interrupted, or failed with why."""
    if exc is None:
        return {"status": SessionStatus.CLOSED}
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return {"status": SessionStatus.INTERRUPTED, "error": "interrupted"}
    return {"status": SessionStatus.FAILED, "error": str(exc) or type(exc).__name__}
