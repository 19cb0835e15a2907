"""The monitor's screen: a plain `MonitorState` in, a rich renderable or text lines out.

Pure (no pipeline, no clock): `arbkit.session.monitor.snapshot` builds the state of a running
monitor, `render` draws it (the command refreshes it in place with rich's ``Live``) and
`plain_lines` gives the same figures as text for a log or a pipe. Prices are Kalshi's
dollars to $0.0001, edges after fees, ages in seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from arbkit.core.events import SignalRow
from arbkit.core.fixed import KALSHI_PRICE_DIGITS, format_fixed
from arbkit.index.report import replica_view
from arbkit.index.rti import RtiResult
from arbkit.session.pipeline import Progress
from arbkit.strategy.fairvalue import StrikeType
from arbkit.strategy.signals import Decision, Reason


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
    """The market's strike as a condition on the settlement value, e.g. ``≥ 97,100.25``
    (Kalshi's other strike types as their name)."""
    floor, cap = _usd(line.floor_strike_e8), _usd(line.cap_strike_e8)
    conditions: dict[str, str] = {
        StrikeType.GREATER_OR_EQUAL: f"≥ {floor}",
        StrikeType.GREATER: f"> {floor}",
        StrikeType.LESS: f"< {cap}",
        StrikeType.LESS_OR_EQUAL: f"≤ {cap}",
        StrikeType.BETWEEN: f"{floor}-{cap}",
    }
    return conditions.get(line.strike_type, line.strike_type or "-")


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
