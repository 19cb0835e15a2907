"""Threshold × latency sweeps over many sessions, on any `concurrent.futures.Executor`.

A task is small and picklable: the session paths and a chunk of settings. Its worker reads
the sessions' Parquet itself, replays each through the strategy once (`decisions.prepare`, at
the sweep's lowest threshold) and then runs every setting of its chunk on that (`fills`,
`results`). Latency draws are seeded by (seed, session, latency value), so the table does not
depend on how settings were chunked or where they ran.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import Progress

from arbkit.analysis.decisions import prepare
from arbkit.analysis.fills import Orders, simulate
from arbkit.analysis.latency_models import Latency, draw_latencies, recorded_samples
from arbkit.analysis.results import Settled, settle, summary
from arbkit.core.fixed import KALSHI_PRICE_SCALE
from arbkit.core.storage import Session
from arbkit.strategy.signals import SignalParams

SessionLike = Path | str | Session


@dataclass(frozen=True, slots=True)
class Setting:
    threshold_e4: int
    latency_ms: float


@dataclass(frozen=True, slots=True)
class Task:
    """One chunk of a sweep: what a worker needs, all picklable."""

    paths: tuple[str, ...]
    settings: tuple[Setting, ...]
    params: SignalParams
    """The strategy's parameters; ``threshold_e4`` the sweep's lowest."""
    latency: Latency
    seed: int


def threshold_e4(dollars: float) -> int:
    """A threshold in dollars per contract as $0.0001 units."""
    return round(dollars * float(KALSHI_PRICE_SCALE))


def session_path(session: SessionLike) -> str:
    return str(session.path if isinstance(session, Session) else Path(session))


class Runner:
    """Prepared sessions and their recorded latency samples: runs settings on them."""

    def __init__(self, paths: Sequence[str], params: SignalParams, latency: Latency) -> None:
        self.latency = latency
        self._references: dict[int, Settled] = {}
        self.prepared = [prepare(p, params) for p in paths]
        self.samples = [
            {dist: recorded_samples(Session(p), dist) for dist in latency.distributions}
            for p in paths
        ]

    def _run(self, threshold: int, latency: Latency, seed: Sequence[int]) -> Settled:
        orders: list[Orders] = []
        for k, (prep, samples) in enumerate(zip(self.prepared, self.samples, strict=True)):
            dec, order = draw_latencies(latency, samples, prep.decisions.n, (*seed, k))
            orders.append(simulate(prep, threshold, dec, order))
        return settle(self.prepared, orders)

    def run(self, setting: Setting, seed: int) -> Settled:
        """One setting (latency draws seeded by the seed and the latency value)."""
        latency = self.latency.with_offset_ms(setting.latency_ms)
        return self._run(setting.threshold_e4, latency, (seed, round(setting.latency_ms * 1000)))

    def reference(self, threshold_e4: int) -> Settled:
        """The threshold with no latency (the edge a setting's latency cost is taken from)."""
        ref = self._references.get(threshold_e4)
        if ref is None:
            ref = self._references[threshold_e4] = self._run(threshold_e4, Latency(), (0,))
        return ref

    def row(self, setting: Setting, seed: int) -> tuple[dict[str, Any], Settled]:
        """A setting's summary row (`results.summary`) and its orders."""
        settled = self.run(setting, seed)
        out = {
            "threshold": setting.threshold_e4 / KALSHI_PRICE_SCALE,
            "latency_ms": setting.latency_ms,
            **summary(settled, self.reference(setting.threshold_e4)),
        }
        return out, settled


def run_task(task: Task) -> list[dict[str, Any]]:
    """A worker's job: load the sessions once, run the chunk's settings."""
    runner = Runner(task.paths, task.params, task.latency)
    return [runner.row(s, task.seed)[0] for s in task.settings]


def _chunks(items: Sequence[Setting], n: int) -> Iterator[tuple[Setting, ...]]:
    size = max(1, math.ceil(len(items) / max(n, 1)))
    for i in range(0, len(items), size):
        yield tuple(items[i : i + size])


def settings(thresholds: Sequence[float], latencies_ms: Sequence[float]) -> list[Setting]:
    """Every (threshold, latency) pair; raises ValueError on an empty list or a negative
    latency."""
    if not thresholds or not latencies_ms:
        msg = "a sweep needs at least one threshold and one latency"
        raise ValueError(msg)
    bad = [x for x in latencies_ms if not (math.isfinite(x) and x >= 0)]
    if bad:
        msg = f"latencies must be zero or more milliseconds, got {bad}"
        raise ValueError(msg)
    return [Setting(threshold_e4(t), float(ms)) for t in thresholds for ms in latencies_ms]


def sweep(
    sessions: Sequence[SessionLike],
    *,
    thresholds: Sequence[float],
    latencies_ms: Sequence[float],
    executor: Executor | None = None,
    latency: Latency | None = None,
    params: SignalParams | None = None,
    seed: int = 0,
    chunks: int | None = None,
    progress: bool = True,
) -> pl.DataFrame:
    """Backtest every threshold (dollars per contract, after fees) at every latency (ms added
    to ``latency``'s order leg; default all of it, constant) over ``sessions``: one row per
    setting, sorted by threshold then latency (see `results.summary` for the columns).

    ``executor``: any `concurrent.futures.Executor` (a Dask ``client.get_executor()`` too);
    never shut down here. Without one, a local process pool is created and shut down.
    ``chunks``: tasks to split the settings into (default: the pool's workers, or 4).
    """
    grid = settings(thresholds, latencies_ms)
    paths = tuple(session_path(s) for s in sessions)
    if not paths:
        msg = "a sweep needs at least one session"
        raise ValueError(msg)
    base = replace(params or SignalParams(), threshold_e4=min(s.threshold_e4 for s in grid))
    lat = latency or Latency()
    own = executor is None
    workers = min(os.cpu_count() or 1, chunks or len(grid))
    n = chunks or (workers if own else 4)
    tasks = [Task(paths, c, base, lat, seed) for c in _chunks(grid, n)]
    pool: Executor = executor or ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn")
    )
    rows: list[dict[str, Any]] = []
    try:
        futures: list[Future[list[dict[str, Any]]]] = [pool.submit(run_task, t) for t in tasks]
        with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
            job = bar.add_task("backtest sweep", total=len(grid))
            for done in as_completed(futures):
                chunk = done.result()
                rows.extend(chunk)
                bar.advance(job, len(chunk))
    finally:
        if own:
            pool.shutdown(cancel_futures=True)
    return pl.DataFrame(rows, infer_schema_length=None).sort(
        "threshold", "latency_ms", maintain_order=True
    )
