"""Backtest sweep: 100 thresholds × 5 latencies over a generated session, beside a naive loop.

The sweep (`arbkit.analysis.backtest.sweep`) on a local pool of 2 processes: each worker replays
the session through the `Strategy` once, then runs its settings on the vectorised fill stage.
The naive reference, in the same run: per setting, a fresh `Strategy` replay at that threshold
and the order-by-order fill loop (`fills.simulate_sequential`) — timed on a few settings and
scaled to the 500 (each naive setting costs the same: one replay plus one fill pass).

The session: ``--session DIR`` (or ``ARBKIT_BENCH_SESSION``), else one generated with
`arbkit.session.generate` for ``--hours`` (``ARBKIT_BENCH_HOURS``, default 24).

    python -m bench.bench_backtest --session /path/to/session
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from arbkit.analysis.backtest import sweep
from arbkit.analysis.decisions import prepare
from arbkit.analysis.fills import simulate_sequential
from arbkit.analysis.latency_models import Latency
from arbkit.analysis.results import settle, summary
from arbkit.analysis.sweep import Runner, Setting
from arbkit.strategy.signals import SignalParams

THRESHOLDS = [i / 1000 for i in range(100)]
LATENCIES_MS = [0.0, 100.0, 250.0, 500.0, 1000.0]
PARAMS = SignalParams(maintenance=None)
"""The generated world has no weekly maintenance pause."""


def session_path(arg: str | None, hours: float, tmp: Path) -> Path:
    given = arg or os.environ.get("ARBKIT_BENCH_SESSION")
    if given:
        return Path(given)
    from arbkit.session.generate import GenerateConfig, generate

    made: Path = generate(GenerateConfig(hours=hours, seed=7, out=tmp))
    return made


def measure(path: Path, *, naive_settings: int = 2, workers: int = 2) -> list[dict[str, Any]]:
    n = len(THRESHOLDS) * len(LATENCIES_MS)
    start = time.perf_counter()
    table = sweep(
        [path],
        thresholds=THRESHOLDS,
        latencies_ms=LATENCIES_MS,
        params=PARAMS,
        chunks=workers,
        progress=False,
    )
    sweep_s = time.perf_counter() - start
    assert table.height == n

    start = time.perf_counter()
    runner = Runner([str(path)], replace(PARAMS, threshold_e4=0), Latency())
    replay_s = time.perf_counter() - start
    prep = runner.prepared[0]
    start = time.perf_counter()
    for ms in LATENCIES_MS:
        for t in (0, 200, 500):
            runner.partial(Setting(t, ms), 0)
    fill_s = (time.perf_counter() - start) / (3 * len(LATENCIES_MS))

    start = time.perf_counter()
    for t in (0, 200, 500)[:naive_settings]:
        own = prepare(path, replace(PARAMS, threshold_e4=t))
        z = np.zeros(own.decisions.n, dtype=np.int64)
        done = settle([own], [simulate_sequential(own, t, z, z)])
        summary(done, done)
    naive_one = (time.perf_counter() - start) / naive_settings
    naive_s = naive_one * n
    span_h = (prep.end_ns - prep.start_ns) / 3.6e12
    note = f"{span_h:.1f} h session, {prep.decisions.n:,} decisions, {n} settings"
    return [
        {
            "name": "backtest sweep 100x5, 2 workers",
            "value": round(sweep_s, 1),
            "unit": "s",
            "target": "< 30 s (24 h session)",
            "note": note,
        },
        {
            "name": "— one Strategy replay of the session",
            "value": round(replay_s, 1),
            "unit": "s",
            "target": "",
            "note": "stage 1, once per worker",
        },
        {
            "name": "— one setting's fills + summary (vectorised)",
            "value": round(fill_s, 3),
            "unit": "s",
            "target": "",
            "note": "stage 2 (with its no-latency reference), 15 low-threshold settings",
        },
        {
            "name": "naive per-setting loop, 500 settings (scaled)",
            "value": round(naive_s, 1),
            "unit": "s",
            "target": "reference",
            "note": f"{naive_one:.1f} s per setting x {n}, measured on {naive_settings}",
        },
        {
            "name": "sweep speed-up over the naive loop",
            "value": round(naive_s / sweep_s, 1),
            "unit": "x",
            "target": "",
            "note": "same run",
        },
    ]


def run() -> list[dict[str, Any]]:
    hours = float(os.environ.get("ARBKIT_BENCH_HOURS", "24"))
    with tempfile.TemporaryDirectory() as tmp:
        return measure(session_path(None, hours, Path(tmp)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--naive-settings", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = session_path(args.session, args.hours, Path(tmp))
        for row in measure(path, naive_settings=args.naive_settings):
            print(f"{row['name']:<50} {row['value']:>10} {row['unit']:<3} {row['note']}")
