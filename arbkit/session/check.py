"""The validation suite behind ``arbkit check``: run the pipeline a while, then judge it.

Every check has a name, a figure, a threshold and a verdict (`Check`). They cover connecting
and authenticating, time to the first message of Kalshi's WebSocket and of each spot venue
(connect -> first frame, subscribe -> first book snapshot), latency percentiles (with the
clocks each one subtracts; Kalshi WS, Kalshi REST, and each spot venue that stamps its
frames), and data quality (gaps, resyncs, duplicates, checksum failures, divergences, crossed
or stale books, reconnects, errors, replica availability). The figures come from what the
pipeline's listeners saw (raw frames, rows and ``events``), so a fault injected into the
embedded world fails the checks it breaks.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from arbkit.core.errors import ArbkitError
from arbkit.core.events import (
    EventRow,
    KalshiBookRow,
    KalshiRestBookRow,
    RawFrame,
    Row,
    SpotBookRow,
)
from arbkit.index.live import LiveTick
from arbkit.session.environment import Environment
from arbkit.session.pipeline import Pipeline, PipelineConfig, Progress
from arbkit.venues.kalshi.protocol import STREAM as KALSHI_WS
from arbkit.venues.kalshi.rest import STREAM as KALSHI_REST


class Rule(StrEnum):
    """How a figure is compared with its threshold."""

    AT_MOST = "<="
    AT_LEAST = ">="


@dataclass(frozen=True, slots=True)
class Check:
    """One verdict: ``figure`` compared with ``threshold`` by ``rule`` (a missing figure
    fails); ``detail`` says what was measured and against which clocks."""

    name: str
    passed: bool
    figure: float | None
    threshold: float
    rule: Rule
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"rule": self.rule.value}


def judge(name: str, figure: float | None, rule: Rule, threshold: float, detail: str) -> Check:
    """A `Check` from a figure and its threshold (both kept as floats, so ``--json`` gives
    one number type)."""
    value = None if figure is None else float(figure)
    limit = float(threshold)
    if value is None:
        passed = False
    elif rule is Rule.AT_MOST:
        passed = value <= limit
    else:
        passed = value >= limit
    return Check(name, passed, value, limit, rule, detail)


@dataclass(frozen=True)
class Thresholds:
    """What passes (one place, so a user or a test can state its own)."""

    first_frame_s: float = 5.0
    first_book_s: float = 10.0
    ws_p99_ms: float = 500.0
    rest_p99_ms: float = 1000.0
    spot_p99_ms: float = 1000.0
    replica_available: float = 0.95


SPOT = "spot"
"""The group of every spot venue's stream in `COUNTED`."""


class Counted(NamedTuple):
    """An event count that must be zero: ``kinds`` of events on ``group``'s streams."""

    group: str
    """A stream, or `SPOT` for every spot venue's."""
    kinds: tuple[str, ...]
    what: str
    """What the events are, for a reader of the table."""


COUNTED: dict[str, Counted] = {
    "kalshi_ws_gaps": Counted(KALSHI_WS, ("gap",), "sequence gaps (seq jumped)"),
    "kalshi_ws_resyncs": Counted(
        KALSHI_WS, ("resync",), "book resyncs (snapshots asked again or resubscribed)"
    ),
    "kalshi_ws_duplicates": Counted(
        KALSHI_WS, ("duplicate",), "repeated frames (seq, trade_id or ticker seen before)"
    ),
    "kalshi_ws_malformed": Counted(KALSHI_WS, ("malformed",), "frames that did not parse"),
    "kalshi_ws_errors": Counted(
        KALSHI_WS,
        ("error", "rate_limit"),
        "error replies (e.g. 17 internal error, 25 buffer overflow, 27 too many requests)",
    ),
    "kalshi_ws_crossed": Counted(KALSHI_WS, ("crossed",), "crossed books (YES bid + NO bid >= $1)"),
    "kalshi_ws_stale": Counted(
        KALSHI_WS, ("stale",), "books gone stale (no frame or ping for 10.5 s)"
    ),
    "kalshi_ws_reconnects": Counted(KALSHI_WS, ("reconnect",), "reconnects"),
    "kalshi_rest_errors": Counted(
        KALSHI_REST, ("error", "rate_limit"), "requests failed or answered 429/5xx"
    ),
    "spot_gaps": Counted(SPOT, ("gap",), "sequence gaps"),
    "spot_resyncs": Counted(SPOT, ("resync",), "book resyncs (fresh snapshots)"),
    "spot_duplicates": Counted(SPOT, ("duplicate",), "repeated frames (dropped)"),
    "spot_checksum_failures": Counted(SPOT, ("checksum",), "book checksum mismatches"),
    "spot_divergences": Counted(
        SPOT, ("divergence",), "books that differed from the venue's REST book"
    ),
    "spot_crossed": Counted(SPOT, ("crossed",), "crossed books (best bid >= best ask)"),
    "spot_stale": Counted(SPOT, ("stale",), "books gone stale (no update for 10 s)"),
    "spot_malformed": Counted(SPOT, ("malformed",), "frames that did not parse"),
    "spot_errors": Counted(SPOT, ("error", "rate_limit"), "error replies and failed REST requests"),
    "spot_reconnects": Counted(SPOT, ("reconnect",), "reconnects"),
}


@dataclass(slots=True)
class FirstMessage:
    """Time to the first message of one WebSocket stream, from its raw frames (local clock).

    ``frame_s``: the connect (upgrade done) to the first frame received on that connection.
    ``book_s``: the first command sent on the connection (the subscribe) to the first book
    snapshot, or the connect where none was sent first (venues that subscribe by URL). Each is
    taken on the first connection that got that far.
    """

    connect_ns: int | None = None
    subscribe_ns: int | None = None
    frame_s: float | None = None
    book_s: float | None = None
    book_from_connect: bool = False

    def raw(self, frame: RawFrame) -> None:
        kind = frame.kind
        if kind == "frame":
            if self.frame_s is None and self.connect_ns is not None:
                self.frame_s = (frame.recv_ns - self.connect_ns) / 1e9
        elif kind == "connect":
            self.connect_ns, self.subscribe_ns = frame.recv_ns, None
        elif kind == "send" and self.subscribe_ns is None:
            self.subscribe_ns = frame.recv_ns

    def book(self, recv_ns: int) -> None:
        if self.book_s is None and self.connect_ns is not None:
            self.book_from_connect = self.subscribe_ns is None
            start = self.connect_ns if self.subscribe_ns is None else self.subscribe_ns
            self.book_s = (recv_ns - start) / 1e9


class Observer:
    """Collects, through the pipeline's listeners, what the checks are computed from."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.venues = frozenset(pipeline.config.venues)
        self.events: Counter[tuple[str, str]] = Counter()
        """(stream, kind) -> how many events."""
        self.first: dict[str, FirstMessage] = {
            s: FirstMessage() for s in (KALSHI_WS, *sorted(self.venues))
        }
        self.ws_delays_ns: list[int] = []
        self.rest_rtts_ns: dict[int, int] = {}
        self.spot_delays_ns: dict[str, list[int]] = {}
        self._spot_frame: dict[str, int] = {}  # venue -> recv_ns of its last row (one frame)
        self.ticks = 0
        self.valued_ticks = 0
        pipeline.on_raw(self._raw)
        pipeline.on_row(self._row)
        pipeline.on_tick(self._tick)

    def _raw(self, stream: str, frame: RawFrame) -> None:
        first = self.first.get(stream)
        if first is not None:
            first.raw(frame)

    def _row(self, row: Row) -> None:
        if isinstance(row, KalshiBookRow):
            if row.is_snapshot:
                self.first[KALSHI_WS].book(row.recv_ns)
            elif row.exch_ns is not None:
                self.ws_delays_ns.append(row.recv_ns - row.exch_ns)
        elif isinstance(row, SpotBookRow):
            if row.is_snapshot and row.venue in self.first:
                self.first[row.venue].book(row.recv_ns)
            if row.exch_ns is not None and self._spot_frame.get(row.venue) != row.recv_ns:
                self._spot_frame[row.venue] = row.recv_ns
                self.spot_delays_ns.setdefault(row.venue, []).append(row.recv_ns - row.exch_ns)
        elif isinstance(row, KalshiRestBookRow):
            self.rest_rtts_ns.setdefault(row.poll_id, row.recv_ns - row.sent_ns)
        elif isinstance(row, EventRow):
            self.events[(row.stream, row.kind)] += 1

    def _tick(self, tick: LiveTick) -> None:
        self.ticks += 1
        self.valued_ticks += tick.result.value_e8 is not None

    def checks(self, limits: Thresholds | None = None) -> list[Check]:
        """Every verdict, from what was seen since the pipeline started."""
        t = limits or Thresholds()
        p = self.pipeline
        progress = p.progress()
        offset = p.clock.offset_ns or 0
        out = [
            judge(
                "kalshi_ws_connected",
                float(progress.ws_ever_connected),
                Rule.AT_LEAST,
                1,
                p.ws_failure() or "Kalshi's WebSocket connected",
            ),
            judge(
                "kalshi_ws_auth_failures",
                progress.ws_auth_failures,
                Rule.AT_MOST,
                0,
                "WebSocket upgrades refused with 401/403",
            ),
        ]
        for stream, first in self.first.items():
            out += _first_message(stream, first, t)
        out += [
            judge(
                "kalshi_ws_books_valid",
                progress.valid_books / progress.markets if progress.markets else None,
                Rule.AT_LEAST,
                1.0,
                f"{progress.valid_books}/{progress.markets} followed books valid at the end "
                "(in sequence, fresh, not crossed)",
            ),
            _latency(
                "kalshi_ws_latency_p99_ms",
                [d + offset for d in self.ws_delays_ns],
                t.ws_p99_ms,
                "book deltas: local receive time + clock offset (server - local) "
                "- Kalshi's ts_ms (server clock)",
            ),
            _latency(
                "kalshi_rest_latency_p99_ms",
                list(self.rest_rtts_ns.values()),
                t.rest_p99_ms,
                "REST book polls: response received - request sent (local clock only)",
            ),
        ]
        out += [
            _latency(
                f"{venue}_latency_p99_ms",
                delays,
                t.spot_p99_ms,
                f"{venue} book frames: local receive time - the venue's own timestamp "
                "(venue clock; no offset estimate)",
            )
            for venue, delays in sorted(self.spot_delays_ns.items())
        ]
        out += [
            self._counted(name, counted)
            for name, counted in COUNTED.items()
            if counted.group != SPOT or self.venues
        ]
        if self.venues:
            out.append(
                judge(
                    "spot_venues_live",
                    progress.spot_venues / progress.spot_total,
                    Rule.AT_LEAST,
                    1.0,
                    f"{progress.spot_venues}/{progress.spot_total} venues with a book at the end",
                )
            )
            out.append(
                judge(
                    "replica_available",
                    self.valued_ticks / self.ticks if self.ticks else None,
                    Rule.AT_LEAST,
                    t.replica_available,
                    f"{self.valued_ticks}/{self.ticks} replica calculations with a value",
                )
            )
        return out

    def _counted(self, name: str, counted: Counted) -> Check:
        """A check that ``counted``'s events never happened; its detail says what they are,
        which event kinds of which streams it counts, and (spot) on which venues they came."""
        group, kinds = counted.group, counted.kinds
        streams = sorted(self.venues) if group == SPOT else [group]
        per = {s: sum(self.events[(s, k)] for k in kinds) for s in streams}
        where = "spot venues" if group == SPOT else group
        detail = f"{counted.what} [{' or '.join(kinds)} events on {where}]"
        seen = ", ".join(f"{s} {c}" for s, c in per.items() if c)
        if group == SPOT and seen:
            detail = f"{seen}: {detail}"
        return judge(name, sum(per.values()), Rule.AT_MOST, 0, detail)


def _first_message(stream: str, first: FirstMessage, t: Thresholds) -> list[Check]:
    """Connect -> first frame and subscribe -> first book snapshot on ``stream``."""
    book_from = (
        "connect (no subscribe message: the URL subscribes)"
        if first.book_from_connect
        else "subscribe sent"
    )
    return [
        judge(
            f"{stream}_first_frame_s",
            first.frame_s,
            Rule.AT_MOST,
            t.first_frame_s,
            "WebSocket open -> first frame received; both times on the local clock",
        ),
        judge(
            f"{stream}_first_book_s",
            first.book_s,
            Rule.AT_MOST,
            t.first_book_s,
            f"{book_from} -> first book snapshot received; both times on the local clock",
        ),
    ]


async def run_checks(
    config: PipelineConfig,
    environment: Environment,
    seconds: float,
    *,
    limits: Thresholds | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: float = 5.0,
) -> list[Check]:
    """Run the pipeline for ``seconds`` (the session goes to ``config.out``; ``on_progress``
    every ``progress_every`` seconds), then judge it.

    A start that fails (refused key, unreachable host) is itself the verdict: one failed
    ``kalshi_connect`` check saying why.
    """
    pipeline = Pipeline(config, environment)
    observer = Observer(pipeline)
    try:
        await pipeline.start()
    except ArbkitError as exc:
        return [judge("kalshi_connect", None, Rule.AT_LEAST, 1, str(exc))]
    async with pipeline:
        await pipeline.run(
            seconds, stop=stop, on_progress=on_progress, progress_every=progress_every
        )
        return observer.checks(limits)


def _latency(name: str, values_ns: list[int], threshold_ms: float, clocks: str) -> Check:
    """A p99 check whose detail gives p50/p90/p99/max and n."""
    if not values_ns:
        return judge(name, None, Rule.AT_MOST, threshold_ms, f"no samples; {clocks}")
    q = quantiles_ms(values_ns)
    shown = ", ".join(f"{k} {v:.1f}" for k, v in q.items() if k != "n")
    detail = f"{shown} ms (n={q['n']:.0f}); {clocks}"
    return judge(name, q["p99"], Rule.AT_MOST, threshold_ms, detail)


def quantiles_ms(values_ns: list[int]) -> dict[str, float]:
    """p50, p90, p99 (nearest rank), max (in ms) and n of a sample."""
    ordered = sorted(values_ns)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * n) - 1)] / 1e6

    return {
        "p50": rank(0.5),
        "p90": rank(0.9),
        "p99": rank(0.99),
        "max": ordered[-1] / 1e6,
        "n": float(n),
    }


def format_checks(checks: list[Check], mark: Callable[[bool], str] | None = None) -> str:
    """A pass/fail table for a terminal: a header, one line per check, and a summary naming
    the checks that failed."""
    mark = mark or (lambda ok: "PASS" if ok else "FAIL")
    width = max(len(c.name) for c in checks)
    blank = " " * len(mark(True))
    lines = [f"{blank}  {'check':<{width}}  {'figure':>10} {'threshold':<11} detail"]
    for c in checks:
        figure = "-" if c.figure is None else f"{c.figure:.4g}"
        limit = f"{c.rule.value} {c.threshold:g}"
        lines.append(f"{mark(c.passed)}  {c.name:<{width}}  {figure:>10} {limit:<11} {c.detail}")
    failed = [c.name for c in checks if not c.passed]
    summary = f"{len(checks) - len(failed)}/{len(checks)} checks passed"
    lines.append(f"{summary}; failed: {', '.join(failed)}" if failed else summary)
    return "\n".join(lines)
