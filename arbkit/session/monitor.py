"""The live monitor: the recording `Pipeline` with the strategy on it, seen as it runs.

`monitor` starts the same pipeline as ``arbkit record`` (the session is recorded alike),
hangs `LiveDecisions` off it (every decision into ``signals``) and every ``brti_interval``
seconds hands a `MonitorState` — a plain snapshot of the replica, the followed markets with
their latest decision, and each stream's health — to a display. `render` draws a state with
rich (the command refreshes it in place); `plain_lines` gives it as text lines for a log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from arbkit.core.clock import now_ns
from arbkit.core.config import Env
from arbkit.core.errors import ConfigError
from arbkit.core.events import KalshiBookRow, KalshiRestBookRow, Row, SignalRow
from arbkit.core.fixed import KALSHI_PRICE_DIGITS, format_fixed
from arbkit.index.report import replica_view
from arbkit.index.rti import USED, RtiResult
from arbkit.session.decisions import LiveDecisions
from arbkit.session.environment import Environment
from arbkit.session.pipeline import Pipeline, PipelineConfig, Progress
from arbkit.session.record import conclude
from arbkit.strategy.signals import Decision, Reason, SignalParams, Strategy
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


# -- the state a display shows ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarketLine:
    """One followed market: its terms and its latest decision (None before the first)."""

    ticker: str
    strike_type: str
    floor_strike_e8: int | None
    cap_strike_e8: int | None
    close_ns: int | None
    signal: SignalRow | None


@dataclass(frozen=True, slots=True)
class StreamHealth:
    """One stream (or the spot venues together): counts since the start, and the books it
    cannot vouch for now (Kalshi: followed books not valid; spot: venues not in the replica)."""

    name: str
    connected: str
    frames: int
    reconnects: int
    gaps: int
    errors: int
    stale_books: int
    books: int
    latency_ms: float | None = None
    """Kalshi WS: median receive − Kalshi ``ts_ms`` of recent deltas, clock-corrected;
    REST: median round trip of recent polls (None: none yet, or not measured)."""


@dataclass(frozen=True, slots=True)
class MonitorState:
    """Everything the view shows, as of ``now_ns``."""

    now_ns: int
    env: str
    series: tuple[str, ...]
    progress: Progress
    replica: RtiResult | None
    replica_on: bool
    markets: tuple[MarketLine, ...]
    health: tuple[StreamHealth, ...]
    decisions: int
    buys: int


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


# -- drawing ----------------------------------------------------------------------------


def _price(e4: int | None) -> str:
    return "-" if e4 is None else format_fixed(e4, KALSHI_PRICE_DIGITS)


def _edge(e4: int | None) -> str:
    return "-" if e4 is None else ("+" if e4 >= 0 else "") + format_fixed(e4, KALSHI_PRICE_DIGITS)


def _usd(e8: int | None) -> str:
    """Dollars with cents, the cents left out when whole (strikes: ``99,750-99,999.99``)."""
    if e8 is None:
        return "-"
    text = f"{e8 / 1e8:,.2f}"
    return text.removesuffix(".00")


def strike_text(line: MarketLine) -> str:
    """The market's strike as a condition on the settlement value, e.g. ``≥ 97,100.00``."""
    floor, cap = _usd(line.floor_strike_e8), _usd(line.cap_strike_e8)
    return {
        "greater_or_equal": f"≥ {floor}",
        "greater": f"> {floor}",
        "less": f"< {cap}",
        "less_or_equal": f"≤ {cap}",
        "between": f"{floor}-{cap}",
    }.get(line.strike_type, line.strike_type or "-")


def _closes_in(close_ns: int | None, now: int) -> str:
    if close_ns is None:
        return "-"
    left = max(0, (close_ns - now) // 1_000_000_000)
    hours, rest = divmod(left, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def signal_text(row: SignalRow | None) -> str:
    """``BUY YES 12`` when the decision trades, else why not (``no edge``)."""
    if row is None:
        return "waiting"
    if row.decision == Decision.BUY:
        return f"BUY {row.side.upper()} {row.size}"
    return Reason(row.reason).value.replace("_", " ")


def book_age_s(row: SignalRow | None, now: int) -> float | None:
    """Seconds since the book top the decision used was received."""
    if row is None or row.book_age_ns is None:
        return None
    return (now - row.recv_ns + row.book_age_ns) / 1e9


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


def _table(*columns: tuple[str, str]) -> Table:
    table = Table(show_edge=False, pad_edge=False, collapse_padding=True, box=None)
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    return table


def render(state: MonitorState, *, max_markets: int | None = None) -> Group:
    """The monitor's screen: header, replica with its venues, markets, health, footer.
    ``max_markets`` caps the market rows (the rest are counted), so the view fits a screen."""
    now = state.now_ns
    clock = dt.datetime.fromtimestamp(now / 1e9, dt.UTC).strftime("%H:%M:%S")
    header = Text.assemble(
        ("arbkit monitor", "bold"),
        f"  {state.env}  {' '.join(state.series)}  {clock} UTC  up {state.progress.elapsed_s:.0f} s"
        f"  session {state.progress.path.name}",
    )
    parts: list[RenderableType] = [header]
    if state.replica is not None:
        parts.append(replica_view(state.replica, wrap=False))
    elif state.replica_on:
        parts.append("BRTI replica  waiting for the first calculation")
    else:
        parts.append("BRTI replica  off (--venues none: Kalshi alone)")
    markets = _table(
        ("market", "left"),
        ("strike", "right"),
        ("to close", "right"),
        ("bid", "right"),
        ("ask", "right"),
        ("fair", "right"),
        ("edge", "right"),
        ("age s", "right"),
        ("signal", "left"),
    )
    shown = state.markets if max_markets is None else state.markets[: max(0, max_markets)]
    markets.columns[0].min_width = max((len(m.ticker) for m in shown), default=0)
    for line in shown:
        row = line.signal
        trades = row is not None and row.decision == Decision.BUY
        markets.add_row(
            line.ticker,
            strike_text(line),
            _closes_in(line.close_ns, now),
            _price(None if row is None else row.yes_bid_e4),
            _price(None if row is None else row.yes_ask_e4),
            _price(None if row is None else row.fair_e4),
            _edge(None if row is None else row.edge_e4),
            _age(book_age_s(row, now)),
            Text(signal_text(row), style="bold green" if trades else "dim"),
        )
    hidden = len(state.markets) - len(shown)
    parts.append(
        Text(
            f"\nmarkets ({len(state.markets)} open; YES bid, ask, fair value and edge after "
            "fees in $; book age)",
            style="bold",
        )
    )
    parts.append(markets if state.markets else "  none open yet")
    if hidden:
        parts.append(f"  ... and {hidden} more")
    health = _table(
        ("stream", "left"),
        ("connected", "right"),
        ("frames", "right"),
        ("reconnects", "right"),
        ("gaps", "right"),
        ("errors", "right"),
        ("stale books", "right"),
        ("latency ms", "right"),
    )
    for h in state.health:
        bad = h.gaps or h.errors or h.stale_books
        health.add_row(
            h.name,
            h.connected,
            f"{h.frames:,}",
            f"{h.reconnects:,}",
            f"{h.gaps:,}",
            f"{h.errors:,}",
            f"{h.stale_books}/{h.books}" if h.books else "-",
            "-" if h.latency_ms is None else f"{h.latency_ms:.1f}",
            style="yellow" if bad else None,
        )
    parts.append(
        Text(
            "\nconnection health (latency: median of recent Kalshi WS receive − ts_ms, "
            "REST round trips)",
            style="bold",
        )
    )
    parts.append(health)
    parts.append(
        Text(
            f"\nsignals {state.decisions:,} decisions, {state.buys:,} to buy  |  Ctrl+C stops",
            style="dim",
        )
    )
    return Group(*parts)


def plain_lines(state: MonitorState) -> list[str]:
    """The state as text: the progress line, then one line per market."""
    lines = [f"{state.progress.line()} | signals {state.decisions:,} ({state.buys:,} to buy)"]
    for m in state.markets:
        row = m.signal
        lines.append(
            f"  {m.ticker} {strike_text(m)} closes {_closes_in(m.close_ns, state.now_ns)} "
            f"bid {_price(None if row is None else row.yes_bid_e4)} "
            f"ask {_price(None if row is None else row.yes_ask_e4)} "
            f"fair {_price(None if row is None else row.fair_e4)} "
            f"edge {_edge(None if row is None else row.edge_e4)} {signal_text(row)} "
            f"age {_age(book_age_s(row, state.now_ns))} s"
        )
    return lines


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
    params = config.params
    if environment.env is Env.SIM:
        params = dataclasses.replace(params, maintenance=None)
    pipeline = Pipeline(config, environment, meta={"command": "monitor"})
    decisions = LiveDecisions(pipeline, Strategy(params))
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
