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
from arbkit.analysis.fills import Arrivals, arrive, fill
from arbkit.analysis.latency_models import Latency, draw_latencies, recorded_samples
from arbkit.analysis.results import Partial, Settled, combine, partial, settle
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
    """One session and a chunk of settings: what a worker needs, all picklable."""

    path: str
    session: int
    """The session's position in the sweep (it seeds the latency draws)."""
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

    def __init__(
        self, paths: Sequence[str], params: SignalParams, latency: Latency, *, first: int = 0
    ) -> None:
        """``first``: the position of ``paths[0]`` among the sweep's sessions."""
        self.latency = latency
        self.first = first
        self._references: dict[int, Settled] = {}
        self._arrivals: dict[tuple[int, ...], list[Arrivals]] = {}
        self.prepared = [prepare(p, params) for p in paths]
        self.samples = [
            {dist: recorded_samples(Session(p), dist) for dist in latency.distributions}
            for p in paths
        ]

    def _run(self, threshold: int, latency: Latency, seed: tuple[int, ...]) -> Settled:
        """A threshold under one latency draw (the draw and the book checks on arrival are
        made once per draw and shared by every threshold)."""
        arrivals = self._arrivals.get(seed)
        if arrivals is None:
            arrivals = self._arrivals[seed] = []
            for k, (prep, samples) in enumerate(zip(self.prepared, self.samples, strict=True)):
                key = (*seed, self.first + k)
                dec, order = draw_latencies(latency, samples, prep.decisions.n, key)
                arrivals.append(arrive(prep, dec, order))
        orders = [fill(p, a, threshold) for p, a in zip(self.prepared, arrivals, strict=True)]
        return settle(self.prepared, orders)

    def run(self, setting: Setting, seed: int) -> Settled:
        """One setting (latency draws seeded by the seed and the latency value)."""
        latency = self.latency.with_offset_ms(setting.latency_ms)
        if latency == Latency():
            return self.reference(setting.threshold_e4)
        return self._run(setting.threshold_e4, latency, (seed, round(setting.latency_ms * 1000)))

    def reference(self, threshold_e4: int) -> Settled:
        """The threshold with no latency (the edge a setting's latency cost is taken from)."""
        ref = self._references.get(threshold_e4)
        if ref is None:
            ref = self._references[threshold_e4] = self._run(threshold_e4, Latency(), ())
        return ref

    def partial(self, setting: Setting, seed: int) -> tuple[Partial, Settled]:
        """A setting's sums (`results.partial`) and its orders."""
        settled = self.run(setting, seed)
        return partial(settled, self.reference(setting.threshold_e4)), settled


def row(setting: Setting, parts: Sequence[Partial]) -> dict[str, Any]:
    """A setting's summary row over the sessions its parts come from."""
    return {
        "threshold": setting.threshold_e4 / KALSHI_PRICE_SCALE,
        "latency_ms": setting.latency_ms,
        **combine(parts),
    }


def run_task(task: Task) -> list[tuple[Setting, Partial]]:
    """A worker's job: load the session once, run the chunk's settings on it."""
    runner = Runner([task.path], task.params, task.latency, first=task.session)
    return [(s, runner.partial(s, task.seed)[0]) for s in task.settings]


def _chunks(items: Sequence[Setting], n: int) -> Iterator[tuple[Setting, ...]]:
    size = max(1, math.ceil(len(items) / max(n, 1)))
    for i in range(0, len(items), size):
        yield tuple(items[i : i + size])


def settings(thresholds: Sequence[float], latencies_ms: Sequence[float]) -> list[Setting]:
    """Every distinct (threshold, latency) pair; raises ValueError on an empty list or a negative
    latency."""
    if not thresholds or not latencies_ms:
        msg = "a sweep needs at least one threshold and one latency"
        raise ValueError(msg)
    bad = [x for x in latencies_ms if not (math.isfinite(x) and x >= 0)]
    if bad:
        msg = f"latencies must be zero or more milliseconds, got {bad}"
        raise ValueError(msg)
    grid = [Setting(threshold_e4(t), float(ms)) for t in thresholds for ms in latencies_ms]
    return list(dict.fromkeys(grid))


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
    ``chunks``: tasks to split the settings into per session (default: enough for the
    pool's workers, or 4 tasks in all). Each task replays its one session once.
    """
    grid = settings(thresholds, latencies_ms)
    paths = tuple(session_path(s) for s in sessions)
    if not paths:
        msg = "a sweep needs at least one session"
        raise ValueError(msg)
    base = replace(params or SignalParams(), threshold_e4=min(s.threshold_e4 for s in grid))
    lat = latency or Latency()
    own = executor is None
    workers = os.cpu_count() or 1
    per_session = chunks or max(1, math.ceil((workers if own else 4) / len(paths)))
    tasks = [
        Task(path, k, c, base, lat, seed)
        for k, path in enumerate(paths)
        for c in _chunks(grid, per_session)
    ]
    pool: Executor = executor or ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn")
    )
    parts: dict[Setting, list[Partial]] = {s: [] for s in grid}
    try:
        futures: list[Future[list[tuple[Setting, Partial]]]] = [
            pool.submit(run_task, t) for t in tasks
        ]
        with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
            job = bar.add_task("backtest sweep", total=len(grid) * len(paths))
            for done in as_completed(futures):
                chunk = done.result()
                for setting, part in chunk:
                    parts[setting].append(part)
                bar.advance(job, len(chunk))
    finally:
        if own:
            pool.shutdown(cancel_futures=True)
    rows = [row(s, parts[s]) for s in grid]
    return pl.DataFrame(rows, infer_schema_length=None).sort(
        "threshold", "latency_ms", maintain_order=True
    )
