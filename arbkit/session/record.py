"""Record a session: Kalshi over WebSocket and REST side by side, spot books, BRTI replica.

One recording runs, on one event loop, everything a latency study needs:

- Kalshi's WebSocket feed (books, tickers, trades, lifecycle, Kalshi's own BRTI ticks) for
  the open markets of the chosen series, following new markets as they open;
- a REST book poller on the same markets (the "old way": unsigned, so a CDN may cache it);
- every BRTI constituent's own order-book feed and the BRTI replica computed from them;
- clock-offset probes against Kalshi, recorded with the session.

All of it goes into one `SessionWriter` (raw frames first, normalised tables beside them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from arbkit import __version__
from arbkit.core.clock import ClockOffset
from arbkit.core.config import VENUES, Credentials, Endpoints, Env
from arbkit.core.errors import ArbkitError, ConfigError
from arbkit.core.events import KalshiLifecycleRow
from arbkit.core.storage import SessionWriter
from arbkit.index.live import LiveIndex, OfficialTap
from arbkit.venues.kalshi.auth import Signer
from arbkit.venues.kalshi.discovery import MarketChange, MarketDiscovery
from arbkit.venues.kalshi.limiter import TokenBucket
from arbkit.venues.kalshi.markets import BTC_SERIES
from arbkit.venues.kalshi.poller import RestBookPoller
from arbkit.venues.kalshi.rest import KalshiRest
from arbkit.venues.kalshi.ws import KalshiFeed

CLOCK_PROBE_INTERVAL_S = 10.0


@dataclass(frozen=True)
class RecordConfig:
    """What to record and for how long."""

    series: Sequence[str] = BTC_SERIES
    seconds: float = 600.0
    rest_interval: float = 1.0
    venues: Sequence[str] = VENUES
    horizon_s: float | None = 2 * 3600.0
    """Only markets closing within this many seconds (hourly ladders open days ahead)."""
    out: Path = field(default_factory=lambda: Path("data/recordings"))
    session_id: str | None = None

    def validate(self) -> None:
        if self.seconds <= 0:
            msg = f"the recording length must be positive, got {self.seconds:g} s"
            raise ConfigError(msg)
        if self.rest_interval <= 0:
            msg = f"--rest-interval must be positive, got {self.rest_interval:g} s"
            raise ConfigError(msg)
        unknown = [s for s in self.series if s not in BTC_SERIES]
        if unknown:
            msg = f"unknown series {unknown}: arbkit records {', '.join(BTC_SERIES)}"
            raise ConfigError(msg)


Progress = Callable[[dict[str, Any]], None]


async def record(
    config: RecordConfig,
    endpoints: Endpoints,
    credentials: Credentials | None,
    *,
    env: Env,
    progress: Progress | None = None,
    progress_every: float = 5.0,
    stop: asyncio.Event | None = None,
) -> Path:
    """Record until ``config.seconds`` pass (or ``stop`` is set); returns the session path."""
    config.validate()
    if credentials is None:
        msg = (
            "Kalshi's WebSocket needs an API key: set KALSHI_API_KEY_ID and "
            "KALSHI_PRIVATE_KEY_PATH (or use --env sim)"
        )
        raise ConfigError(msg)
    signer = Signer.from_credentials(credentials)
    stop = stop or asyncio.Event()
    writer = SessionWriter.create(
        config.out,
        config.session_id,
        meta={
            "env": env.value,
            "series": list(config.series),
            "endpoints": endpoints.to_dict(),
            "config": {k: str(v) for k, v in asdict(config).items()},
            "versions": {"arbkit": __version__},
        },
    )
    clock = ClockOffset()
    limiter = TokenBucket()  # one account budget shared by the signed and unsigned clients
    signed = KalshiRest(endpoints.kalshi.rest, signer=signer, limiter=limiter, sink=writer)
    unsigned = KalshiRest(endpoints.kalshi.rest, limiter=limiter, sink=writer)
    live = LiveIndex({v: endpoints.venues[v] for v in config.venues}, writer)
    poller = RestBookPoller(unsigned, writer, interval=config.rest_interval)

    # Discovery owns the market set (it applies the horizon); lifecycle messages only tell
    # it to look again, so a market that opens is followed within moments.
    def look_again(_row: KalshiLifecycleRow) -> None:
        discovery.request_refresh()

    feed = KalshiFeed(
        OfficialTap(writer, live), endpoints.kalshi.ws, signer=signer, on_lifecycle=look_again
    )

    def on_change(change: MarketChange) -> None:
        poller.apply(change)
        if change.added:
            feed.add_markets(m.ticker for m in change.added)
        if change.removed:
            feed.remove_markets(change.removed)

    discovery = MarketDiscovery(
        signed,
        config.series,
        on_change=on_change,
        sink=writer,
        horizon=config.horizon_s,
    )
    ws_task: asyncio.Task[None] | None = None
    loops: list[asyncio.Task[None]] = []  # run until cancelled
    started = time.monotonic()
    try:
        await signed.exchange_status(clock)
        await discovery.refresh()  # reports the markets to on_change
        await live.start()
        ws_task = asyncio.create_task(feed.run(stop=stop), name="kalshi-ws")
        loops = [
            asyncio.create_task(poller.run(), name="kalshi-rest"),
            asyncio.create_task(discovery.run(), name="discovery"),
            asyncio.create_task(_probe_clock(signed, clock), name="clock"),
        ]
        next_progress = started + progress_every
        while not stop.is_set() and time.monotonic() - started < config.seconds:
            for task in (ws_task, *loops):
                failure = task.exception() if task.done() else None
                if failure is not None:
                    raise failure
            writer.tick()
            if progress is not None and time.monotonic() >= next_progress:
                next_progress += progress_every
                progress(_progress(writer, live, feed, poller, time.monotonic() - started, config))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.2)
    finally:
        stop.set()  # ends the WebSocket feed; the loops are cancelled
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, *([ws_task] if ws_task else []), return_exceptions=True)
        await live.stop()
        await signed.close()
        await unsigned.close()
        writer.update_meta(
            clock_offset=clock.to_dict(),
            markets=sorted(feed.markets | set(poller.markets)),
            duration_s=round(time.monotonic() - started, 3),
        )
        writer.close()
    return writer.path


async def _probe_clock(client: KalshiRest, clock: ClockOffset) -> None:
    while True:
        await asyncio.sleep(CLOCK_PROBE_INTERVAL_S)
        with contextlib.suppress(ArbkitError):
            await client.exchange_status(clock)


def _progress(
    writer: SessionWriter,
    live: LiveIndex,
    feed: KalshiFeed,
    poller: RestBookPoller,
    elapsed: float,
    config: RecordConfig,
) -> dict[str, Any]:
    counters = writer.counters
    ws = counters.get("kalshi_ws", {})
    tick = live.latest
    return {
        "elapsed_s": elapsed,
        "total_s": config.seconds,
        "markets": len(feed.markets),
        "valid_books": len(feed.valid_books()),
        "ws_frames": ws.get("frames", 0),
        "ws_gaps": ws.get("gaps", 0),
        "ws_reconnects": ws.get("reconnects", 0),
        "rest_polls": counters.get("kalshi_rest", {}).get("requests", 0),
        "spot_venues": len(config.venues) - len(live.missing()),
        "spot_frames": sum(counters.get(v, {}).get("frames", 0) for v in config.venues),
        "brti": None if tick is None or tick.result.value is None else str(tick.result.value),
        "path": str(writer.path),
    }


def format_progress(p: dict[str, Any]) -> str:
    """One status line for a terminal."""
    brti = p["brti"] or "-"
    return (
        f"[{p['elapsed_s']:5.0f}/{p['total_s']:.0f} s] Kalshi WS {p['ws_frames']} frames, "
        f"{p['valid_books']}/{p['markets']} books valid, {p['ws_gaps']} gaps, "
        f"{p['ws_reconnects']} reconnects | REST {p['rest_polls']} requests | spot "
        f"{p['spot_venues']} venues, {p['spot_frames']} frames | BRTI {brti}"
    )
