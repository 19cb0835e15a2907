"""The live BRTI replica: one feed per constituent venue, the index every 200 ms.

`LiveIndex` runs each venue's feed protocol (`arbkit.venues`) on the shared runner, and on a
fixed grid of ``interval_s`` (CF's Effective Time step, 200 ms for the BRTI) it hands every
feed's current `BookView` to the I/O-free `IndexEngine` (`arbkit.index.engine`, the same code
a replay drives) and writes the tick's ``index`` rows to the sink: value, utilized depth, cap,
venues used and each excluded venue with its reason. When official ticks are given (Kalshi's
``cfbenchmarks_value``, via `official` or the `OfficialTap` sink wrapper) each row also carries
the latest official value, so replica − official is recorded per tick.

Memory is bounded: the calculator keeps last tick's merged levels (two tables of the venues'
levels) and one side pair per venue, the feeds keep one book per venue, and the replica's own
history (for one-second and settlement values) is a ring of ``history_s`` seconds of ticks.
What the feeds write (rows, raw frames) goes to the caller's sink.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

from arbkit.core.book import BookView
from arbkit.core.clock import now_ns
from arbkit.core.config import Endpoint
from arbkit.core.errors import ConfigError
from arbkit.core.events import EventRow, KalshiIndexRow, RawFrame, Row
from arbkit.core.retry import Backoff
from arbkit.core.sink import Sink
from arbkit.index.engine import IndexEngine, LiveTick
from arbkit.index.params import PARAMS, RtiParams
from arbkit.index.settlement import Settlement
from arbkit.index.tracking import DEFAULT_MAX_AGE_NS, OfficialTracker
from arbkit.venues.runner import run_feed
from arbkit.venues.spot import SpotFeed, make_feed

__all__ = ["STREAM", "LiveIndex", "LiveTick", "OfficialTap"]

STREAM = "index"
"""The stream name the live index's own events are recorded under."""


class LiveIndex:
    """Feeds for ``venues`` on ``endpoints``, and the replica computed from them on a timer.

    Use as an async context manager (or `start` / `stop`). ``feed_options`` are passed to each
    venue's feed constructor (e.g. ``{"kraken": {"depth": 1000}}``, or another ``symbol`` for
    another index's ``params``); ``proxy_venues`` limits
    the volume-weighted mid to the venues users' own proxy takes (default: all). ``on_tick``
    is called with every `LiveTick`, inside the event loop (keep it short).
    """

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint],
        sink: Sink,
        *,
        venues: Sequence[str] | None = None,
        params: RtiParams = PARAMS["BRTI"],
        interval_s: float | None = None,
        history_s: float = 300.0,
        feed_options: Mapping[str, Mapping[str, Any]] | None = None,
        proxy_venues: Sequence[str] | None = None,
        official_max_age_ns: int = DEFAULT_MAX_AGE_NS,
        backoff: Callable[[], Backoff] = Backoff,
        on_tick: Callable[[LiveTick], None] | None = None,
    ) -> None:
        chosen = list(endpoints) if venues is None else list(venues)
        missing = [v for v in chosen if v not in endpoints]
        if missing:
            msg = f"no endpoint configured for venue(s) {', '.join(missing)}"
            raise ConfigError(msg)
        if not chosen:
            msg = "the live index needs at least one venue"
            raise ConfigError(msg)
        interval = float(params.interval_s) if interval_s is None else interval_s
        if interval <= 0:
            msg = f"the calculation interval must be positive, got {interval:g} s"
            raise ConfigError(msg)
        options = feed_options or {}
        self.sink = sink
        self.params = params
        self.interval_ns = int(interval * 1e9)
        self.feeds: dict[str, SpotFeed] = {
            v: make_feed(v, endpoints[v], sink, **dict(options.get(v, {}))) for v in chosen
        }
        self.engine = IndexEngine(
            params,
            interval_ns=self.interval_ns,
            history_s=history_s,
            proxy_venues=proxy_venues,
            official_max_age_ns=official_max_age_ns,
        )
        self.on_tick = on_tick
        self._views: dict[str, tuple[tuple[int, bool], BookView]] = {}
        self._seen: set[str] = set()
        self._backoff = backoff
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._tick = asyncio.Condition()

    @property
    def latest(self) -> LiveTick | None:
        """The last tick computed (None before the first)."""
        return self.engine.latest

    @property
    def tracker(self) -> OfficialTracker:
        """The official-value tracker the engine pairs ticks with."""
        return self.engine.tracker

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> LiveIndex:
        """Connect every feed and start the calculation timer."""
        if self._tasks:
            return self
        self._stop.clear()
        self._http = aiohttp.ClientSession()
        for venue, feed in self.feeds.items():
            task = asyncio.create_task(
                run_feed(
                    feed, self.sink, stop=self._stop, backoff=self._backoff(), http=self._http
                ),
                name=f"feed:{venue}",
            )
            task.add_done_callback(self._feed_ended)
            self._tasks.append(task)
        self._tasks.append(asyncio.create_task(self._run(), name="live-index"))
        return self

    async def stop(self) -> None:
        """Stop the timer and close every feed (each closes its socket)."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> LiveIndex:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _feed_ended(self, task: asyncio.Task[None]) -> None:
        """A feed task should only end when stopped; record one that died of a bug."""
        if task.cancelled() or self._stop.is_set():
            return
        exc = task.exception()
        detail = f"{task.get_name()} ended: {exc!r}" if exc else f"{task.get_name()} ended"
        self.sink.write(EventRow(now_ns(), STREAM, 0, "error", "", detail, None, None))
        self.sink.count(STREAM, "errors")

    # -- calculation ----------------------------------------------------------------------

    async def _run(self) -> None:
        """Calculate on the ``interval`` grid (k·interval since the epoch); a tick that comes
        late (busy loop) is not made up, the next grid point is taken."""
        step = self.interval_ns
        while not self._stop.is_set():
            now = now_ns()
            due = (now // step + 1) * step
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=(due - now) / 1e9)
            if self._stop.is_set():
                return
            self.compute(now_ns(), grid_ns=due)
            async with self._tick:
                self._tick.notify_all()

    def views(self) -> list[BookView]:
        """Every feed's current book view (reused while the book has not changed, so the
        calculator's per-venue cache holds)."""
        out = []
        for venue, feed in self.feeds.items():
            book = feed.books[feed.symbols[0]]
            key = (book.updated_ns, book.valid)
            held = self._views.get(venue)
            if held is None or held[0] != key:
                held = (key, feed.view())
                self._views[venue] = held
            out.append(held[1])
            if held[1].valid:
                self._seen.add(venue)
        return out

    def compute(self, time_ns: int, *, grid_ns: int | None = None) -> LiveTick:
        """One engine calculation at ``time_ns`` from the books held now; rows go to the
        sink. ``grid_ns``: see `IndexEngine.tick`."""
        tick, rows = self.engine.tick(self.views(), time_ns, grid_ns=grid_ns)
        for row in rows:
            self.sink.write(row)
        if self.on_tick is not None:
            self.on_tick(tick)
        return tick

    async def next_tick(self) -> LiveTick:
        """Wait for the next calculation and return it."""
        async with self._tick:
            await self._tick.wait()
        assert self.latest is not None
        return self.latest

    # -- readiness ------------------------------------------------------------------------

    def missing(self) -> list[str]:
        """Venues whose feed has not yet held a valid book (no snapshot so far)."""
        for venue, feed in self.feeds.items():
            if feed.view(depth=1).valid:
                self._seen.add(venue)
        return [v for v in self.feeds if v not in self._seen]

    async def wait_ready(
        self,
        timeout: float,
        *,
        progress: Callable[[list[str]], None] | None = None,
        poll_s: float = 0.1,
    ) -> list[str]:
        """Wait until every venue has had a valid book once, or ``timeout`` seconds; returns
        the venues still missing. ``progress`` is called with the missing venues whenever
        that list changes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        shown: list[str] | None = None
        while True:
            missing = self.missing()
            if progress is not None and missing != shown:
                progress(missing)
                shown = missing
            if not missing or loop.time() >= deadline:
                return missing
            await asyncio.sleep(min(poll_s, max(0.0, deadline - loop.time())))

    # -- official value and settlement ----------------------------------------------------

    def official(self, time_ns: int, value_e8: int) -> None:
        """An official index tick (Kalshi ``cfbenchmarks_value``); see `IndexEngine.official`."""
        self.engine.official(time_ns, value_e8)

    def history(self) -> list[tuple[int, int | None]]:
        """The retained ``(time_ns, value_e8)`` replica ticks, oldest first."""
        return self.engine.history()

    def one_second_values(self) -> dict[int, int]:
        """Whole second (ns) -> the replica's one-second value, over the retained history."""
        return self.engine.one_second_values()

    def settlement(self, at_ns: int, *, window_s: int = 60) -> Settlement:
        """Kalshi's settlement average of the replica's one-second values before ``at_ns``."""
        return self.engine.settlement(at_ns, window_s=window_s)


class OfficialTap:
    """A `Sink` wrapper that passes everything on and hands Kalshi's ``cfbenchmarks_value``
    ticks for ``index_id`` to a `LiveIndex` (give it to the Kalshi WebSocket feed as its sink).

    The official tick's time is its CF source time when Kalshi sends one, else the receive time.
    """

    def __init__(self, inner: Sink, live: LiveIndex, index_id: str = "BRTI") -> None:
        self.inner = inner
        self.live = live
        self.index_id = index_id

    def write(self, row: Row) -> None:
        if isinstance(row, KalshiIndexRow) and row.index_id == self.index_id:
            self.live.official(row.source_ns or row.recv_ns, row.value_e8)
        self.inner.write(row)

    def write_raw(self, stream: str, frame: RawFrame) -> None:
        self.inner.write_raw(stream, frame)

    def declare_stream(self, stream: str, parser: Mapping[str, Any]) -> None:
        self.inner.declare_stream(stream, parser)

    def count(self, stream: str, counter: str, n: int = 1) -> None:
        self.inner.count(stream, counter, n)
