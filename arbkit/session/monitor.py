"""The live monitor: the recording `Pipeline` with the strategy on it, seen as it runs.

`monitor` starts the same pipeline as ``arbkit record`` (the session is recorded alike),
hangs `LiveDecisions` off it (every decision into ``signals``) and every ``brti_interval``
seconds hands a `MonitorState` (`snapshot`: the replica, the followed markets with their
latest decision, each stream's health and recent latency) to a display;
`arbkit.session.monitor_view` draws it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arbkit.core.clock import now_ns
from arbkit.core.config import Env
from arbkit.core.errors import ConfigError
from arbkit.core.events import KalshiBookRow, KalshiRestBookRow, Row
from arbkit.index.rti import USED
from arbkit.session.decisions import LiveDecisions
from arbkit.session.environment import Environment
from arbkit.session.monitor_view import MarketLine, MonitorState, StreamHealth
from arbkit.session.pipeline import Pipeline, PipelineConfig, Progress
from arbkit.session.record import conclude
from arbkit.strategy.signals import SignalParams, Strategy
from arbkit.venues.kalshi.protocol import STREAM as KALSHI_WS
from arbkit.venues.kalshi.rest import STREAM as KALSHI_REST

VOL_WARMUP_RETURNS = 3
"""One-second index returns before the monitor's volatility estimate (and so fair values)
exists: a few seconds after start rather than the strategy's default half minute. The EWMA
then converges over its half-life; backtests keep `SignalParams`' own default."""

DEFAULT_SERIES = "KXBTC15M"
ERROR_COUNTERS = ("errors", "malformed")


def _monitor_params() -> SignalParams:
    return SignalParams(vol_min_returns=VOL_WARMUP_RETURNS)


@dataclass(frozen=True)
class MonitorConfig(PipelineConfig):
    """What to watch, how often the view refreshes, and the strategy's parameters."""

    series: Sequence[str] = (DEFAULT_SERIES,)
    brti_interval: float = 1.0
    """Seconds between view refreshes (the replica itself is calculated every 200 ms)."""
    seconds: float | None = None
    """Stop after this long (None: until Ctrl-C)."""
    params: SignalParams = field(default_factory=_monitor_params)

    def validate(self) -> None:
        if not self.brti_interval > 0:
            msg = f"BRTI_INTERVAL must be a positive number of seconds, got {self.brti_interval:g}"
            raise ConfigError(msg)
        if self.seconds is not None and not self.seconds > 0:
            msg = f"--seconds must be positive, got {self.seconds:g}"
            raise ConfigError(msg)
        super().validate()

    def to_json(self) -> dict[str, Any]:
        params = dataclasses.asdict(self.params)
        window = params.pop("maintenance")
        params["maintenance"] = None if window is None else {k: str(v) for k, v in window.items()}
        return super().to_json() | {
            "brti_interval": self.brti_interval,
            "seconds": self.seconds,
            "signal_params": params,
        }


class RecentLatency:
    """The last ``size`` Kalshi WebSocket delays (receive − Kalshi ``ts_ms`` of each book
    delta, our clock) and REST poll round trips, from the pipeline's listeners."""

    def __init__(self, pipeline: Pipeline, size: int = 1000) -> None:
        self.ws_ns: deque[int] = deque(maxlen=size)
        self.rest_ns: deque[int] = deque(maxlen=size)
        self._poll = -1
        pipeline.on_book(self._book)
        pipeline.on_row(self._row)

    def _book(self, row: KalshiBookRow) -> None:
        if not row.is_snapshot and row.exch_ns is not None:
            self.ws_ns.append(row.recv_ns - row.exch_ns)

    def _row(self, row: Row) -> None:
        if isinstance(row, KalshiRestBookRow) and row.poll_id != self._poll:
            self._poll = row.poll_id
            self.rest_ns.append(row.recv_ns - row.sent_ns)

    @staticmethod
    def median_ms(values: deque[int], offset_ns: int = 0) -> float | None:
        """The median plus ``offset_ns`` (server minus local, for one-way delays), in ms."""
        return None if not values else (statistics.median(values) + offset_ns) / 1e6


def snapshot(
    pipeline: Pipeline, decisions: LiveDecisions, latency: RecentLatency | None = None
) -> MonitorState:
    """The state of a running monitor now."""
    now = now_ns()
    progress = pipeline.progress()
    counters = pipeline.writer.counters if pipeline.writer is not None else {}
    tick = decisions.tick
    offset = pipeline.clock.offset_ns or 0

    def health(
        name: str,
        streams: Sequence[str],
        connected: str,
        stale: int,
        books: int,
        latency_ms: float | None = None,
    ) -> StreamHealth:
        def total(*keys: str) -> int:
            return sum(counters.get(s, {}).get(k, 0) for s in streams for k in keys)

        frames = total("requests") if name == KALSHI_REST else total("frames")
        return StreamHealth(
            name,
            connected,
            frames,
            total("reconnects"),
            total("gaps"),
            total(*ERROR_COUNTERS),
            stale,
            books,
            latency_ms,
        )

    rows = [
        health(
            KALSHI_WS,
            [KALSHI_WS],
            "yes" if progress.ws_connected else "no",
            progress.markets - progress.valid_books,
            progress.markets,
            None if latency is None else latency.median_ms(latency.ws_ns, offset),
        ),
        health(
            KALSHI_REST,
            [KALSHI_REST],
            "-",
            0,
            0,
            None if latency is None else latency.median_ms(latency.rest_ns),
        ),
    ]
    venues = list(pipeline.config.venues)
    if venues:
        used = 0 if tick is None else sum(v.status == USED for v in tick.result.venues)
        rows.append(
            health(
                f"spot ({len(venues)})",
                venues,
                "-",  # spot feeds do not say; their books do (stale books)
                len(venues) - used,
                len(venues),
            )
        )
    markets = []
    for ticker in pipeline.feed.markets:
        info = decisions.markets.get(ticker)
        markets.append(
            MarketLine(
                ticker,
                "" if info is None else info.strike_type,
                None if info is None else info.floor_strike_e8,
                None if info is None else info.cap_strike_e8,
                None if info is None else info.close_ns,
                decisions.latest.get(ticker),
            )
        )
    index_e8 = None if tick is None else tick.result.value_e8
    markets.sort(key=lambda m: _order(m, index_e8))
    return MonitorState(
        now_ns=now,
        env=pipeline.environment.env.value,
        series=tuple(pipeline.config.series),
        progress=progress,
        replica=None if tick is None else tick.result,
        replica_on=pipeline.live is not None,
        markets=tuple(markets),
        health=tuple(rows),
        decisions=decisions.decisions,
        buys=decisions.buys,
    )


def _order(line: MarketLine, index_e8: int | None) -> tuple[int, int, str]:
    """Soonest close first; within a close, the strike nearest the index first (a ladder of
    strikes shows its markets at the money when the screen has room for only some)."""
    strikes = [s for s in (line.floor_strike_e8, line.cap_strike_e8) if s is not None]
    strike = sum(strikes) // len(strikes) if strikes else 0
    distance = strike if index_e8 is None else abs(strike - index_e8)
    return (line.close_ns or 0, distance, line.ticker)


# -- running ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitorResult:
    path: Path
    decisions: int
    buys: int


async def monitor(
    config: MonitorConfig,
    environment: Environment,
    *,
    show: Callable[[MonitorState], None],
    stop: asyncio.Event | None = None,
    announce: Callable[[], None] | None = None,
) -> MonitorResult:
    """Record a session with the strategy deciding on it, calling ``show`` with the state
    every ``config.brti_interval`` seconds, until ``config.seconds`` pass or ``stop`` is set
    (then the session closes ``interrupted``). In the embedded world the strategy skips
    Kalshi's weekly maintenance window (the world says itself when trading is paused).
    ``announce`` is called once the configuration is accepted, before anything connects."""
    config.validate()
    stop = stop or asyncio.Event()
    if environment.env is Env.SIM:  # session.json records the parameters as used
        config = dataclasses.replace(
            config, params=dataclasses.replace(config.params, maintenance=None)
        )
    pipeline = Pipeline(config, environment, meta={"command": "monitor"})
    decisions = LiveDecisions(pipeline, Strategy(config.params))
    latency = RecentLatency(pipeline)
    if announce is not None:
        announce()
    async with pipeline:
        decisions.load_fees()

        def refresh(_progress: Progress) -> None:
            decisions.refresh_validity(now_ns())
            show(snapshot(pipeline, decisions, latency))

        refresh(pipeline.progress())
        await pipeline.run(
            config.seconds,
            stop=stop,
            on_progress=refresh,
            progress_every=config.brti_interval,
        )
        await conclude(pipeline, stop)
    return MonitorResult(pipeline.path, decisions.decisions, decisions.buys)
