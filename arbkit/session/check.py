"""The validation suite behind ``arbkit check``: run the pipeline a while, then judge it.

Every check has a name, a figure, a threshold and a verdict (`Check`). They cover connecting
and authenticating, time to the first book, latency percentiles (with the clocks each one
subtracts; Kalshi WS, Kalshi REST, and each spot venue that stamps its frames), and data
quality (gaps, checksum failures, crossed or stale books, reconnects, errors, replica
availability). The figures come from what the pipeline's listeners saw (rows
and ``events``), so a fault injected into the embedded world fails the checks it breaks.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from arbkit.core.errors import ArbkitError
from arbkit.core.events import EventRow, KalshiBookRow, KalshiRestBookRow, Row, SpotBookRow
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
    """A `Check` from a figure and its threshold."""
    if figure is None:
        passed = False
    elif rule is Rule.AT_MOST:
        passed = figure <= threshold
    else:
        passed = figure >= threshold
    return Check(name, passed, figure, threshold, rule, detail)


@dataclass(frozen=True)
class Thresholds:
    """What passes (one place, so a user or a test can state its own)."""

    first_book_s: float = 10.0
    ws_p99_ms: float = 500.0
    rest_p99_ms: float = 1000.0
    spot_p99_ms: float = 1000.0
    replica_available: float = 0.95


# Event counts that must be zero: check name -> (stream group, event kinds).
COUNTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "kalshi_ws_gaps": (KALSHI_WS, ("gap", "resync")),
    "kalshi_ws_duplicates": (KALSHI_WS, ("duplicate",)),
    "kalshi_ws_malformed": (KALSHI_WS, ("malformed",)),
    "kalshi_ws_crossed": (KALSHI_WS, ("crossed",)),
    "kalshi_ws_reconnects": (KALSHI_WS, ("reconnect",)),
    "kalshi_rest_errors": (KALSHI_REST, ("error", "rate_limit")),
    "spot_gaps": ("spot", ("gap", "resync")),
    "spot_checksum_failures": ("spot", ("checksum",)),
    "spot_crossed": ("spot", ("crossed",)),
    "spot_stale": ("spot", ("stale",)),
    "spot_malformed": ("spot", ("malformed",)),
    "spot_reconnects": ("spot", ("reconnect",)),
}


class Observer:
    """Collects, through the pipeline's listeners, what the checks are computed from."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.venues = frozenset(pipeline.config.venues)
        self.events: Counter[tuple[str, str]] = Counter()
        self.ws_delays_ns: list[int] = []
        self.rest_rtts_ns: dict[int, int] = {}
        self.spot_delays_ns: dict[str, list[int]] = {}
        self._spot_frame: dict[str, int] = {}  # venue -> recv_ns of its last row (one frame)
        self.first_book_ns: int | None = None
        self.ticks = 0
        self.valued_ticks = 0
        pipeline.on_row(self._row)
        pipeline.on_tick(self._tick)

    def _row(self, row: Row) -> None:
        if isinstance(row, KalshiBookRow):
            if self.first_book_ns is None:
                self.first_book_ns = row.recv_ns
            if not row.is_snapshot and row.exch_ns is not None:
                self.ws_delays_ns.append(row.recv_ns - row.exch_ns)
        elif isinstance(row, SpotBookRow):
            if row.exch_ns is not None and self._spot_frame.get(row.venue) != row.recv_ns:
                self._spot_frame[row.venue] = row.recv_ns
                self.spot_delays_ns.setdefault(row.venue, []).append(row.recv_ns - row.exch_ns)
        elif isinstance(row, KalshiRestBookRow):
            self.rest_rtts_ns.setdefault(row.poll_id, row.recv_ns - row.sent_ns)
        elif isinstance(row, EventRow):
            group = "spot" if row.stream in self.venues else row.stream
            self.events[(group, row.kind)] += 1

    def _tick(self, tick: LiveTick) -> None:
        self.ticks += 1
        self.valued_ticks += tick.result.value_e8 is not None

    def checks(self, limits: Thresholds | None = None) -> list[Check]:
        """Every verdict, from what was seen since the pipeline started."""
        t = limits or Thresholds()
        p = self.pipeline
        started_ns = p.started_ns or 0
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
            judge(
                "kalshi_ws_first_book_s",
                None if self.first_book_ns is None else (self.first_book_ns - started_ns) / 1e9,
                Rule.AT_MOST,
                t.first_book_s,
                "start of the session to the first Kalshi book row (local clock)",
            ),
            judge(
                "kalshi_ws_books_valid",
                progress.valid_books / progress.markets if progress.markets else None,
                Rule.AT_LEAST,
                1.0,
                f"{progress.valid_books}/{progress.markets} followed books in sync at the end",
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
        for name, (group, kinds) in COUNTED.items():
            if group == "spot" and not self.venues:
                continue
            n = sum(self.events[(group, k)] for k in kinds)
            out.append(judge(name, n, Rule.AT_MOST, 0, f"{group} events: {', '.join(kinds)}"))
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


async def run_checks(
    config: PipelineConfig,
    environment: Environment,
    seconds: float,
    *,
    limits: Thresholds | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> list[Check]:
    """Run the pipeline for ``seconds`` (the session goes to ``config.out``), then judge it.

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
        await pipeline.run(seconds, stop=stop, on_progress=on_progress, progress_every=1.0)
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
    """A pass/fail table for a terminal."""
    mark = mark or (lambda ok: "PASS" if ok else "FAIL")
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        figure = "-" if c.figure is None else f"{c.figure:g}"
        lines.append(
            f"{mark(c.passed)}  {c.name:<{width}}  {figure:>10} {c.rule.value} "
            f"{c.threshold:<8g} {c.detail}"
        )
    failed = sum(not c.passed for c in checks)
    lines.append(f"{len(checks) - failed}/{len(checks)} checks passed")
    return "\n".join(lines)
