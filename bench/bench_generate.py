"""Benchmark: `arbkit sim generate` — virtual hours per wall minute, and the 24 h extrapolation.

Generates ``BENCH_GENERATE_HOURS`` (default 1) virtual hours with the default rates and a
light fault mix, then, as the same-run reference, decodes every raw frame the session holds
with a bare ``orjson.loads`` (the floor of merely reading those frames once). Run alone with
``python -m bench.bench_generate [HOURS]``; ``BENCH_GENERATE_OUT=DIR`` keeps the session in DIR.
CPU counts both of `generate`'s processes.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

from arbkit.core.storage import open_session
from arbkit.session.generate import GenerateConfig, generate

FAULTS = "gap=0.001,dup=0.001,malformed=0.0005,drop=600s,http429=0.01"
DAY_S = 24 * 3600


_WHO = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)


def _cpu(who: tuple[int, ...] = _WHO) -> float:
    """CPU seconds of this process and its waited-for children (generate's spot process)."""
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, who))


def _decode_all(path: Path) -> tuple[int, float]:
    s = open_session(path)
    n = 0
    started = time.perf_counter()
    for table in s.tables:
        if not table.startswith("raw/"):
            continue
        payloads = s.frame(table).select("payload").collect()["payload"]
        for text in payloads:
            with contextlib.suppress(orjson.JSONDecodeError):
                orjson.loads(text)
            n += 1
    return n, time.perf_counter() - started


def run(hours: float | None = None) -> list[dict[str, object]]:
    hours = hours or float(os.environ.get("BENCH_GENERATE_HOURS", "1"))
    keep = os.environ.get("BENCH_GENERATE_OUT")  # keep the session there (e.g. for a report)
    with tempfile.TemporaryDirectory() as tmp:
        config = GenerateConfig(hours=hours, seed=1, faults=FAULTS, out=Path(keep or tmp))
        wall, cpu, child = time.perf_counter(), _cpu(), _cpu(_WHO[1:])
        path = generate(config)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        child = _cpu(_WHO[1:]) - child
        # before the decode; the larger of this process and the spot side's child
        rss_mib = max(resource.getrusage(r).ru_maxrss for r in _WHO) / 1024
        frames, decode_s = _decode_all(path)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    virtual = hours * 3600
    return [
        {
            "name": f"generate {hours:g} h (virtual), wall / CPU",
            "value": f"{wall:.1f} / {cpu:.1f} s",
            "unit": "",
            "target": "",
            "note": (
                f"{frames:,} raw frames, {size / 1e6:.0f} MB on disk, peak RSS of the "
                f"generation {rss_mib:.0f} MiB"
            ),
        },
        {
            "name": "generation speed (virtual s per wall s)",
            "value": round(virtual / wall),
            "unit": "x real time",
            "target": ">= 144x (24 h < 10 min)",
            "note": (
                f"{frames / wall:,.0f} raw frames/s generated, parsed and written; "
                f"CPU: Kalshi side {cpu - child:.0f} s, spot side {child:.0f} s"
            ),
        },
        {
            "name": "24 h extrapolated (wall)",
            "value": f"{DAY_S / virtual * wall / 60:.1f} min",
            "unit": "",
            "target": "< 10 min",
            "note": "measured length scaled linearly",
        },
        {
            "name": "reference: orjson.loads of the same raw frames",
            "value": round(frames / decode_s),
            "unit": "frames/s",
            "target": "",
            "note": f"generation costs {wall / decode_s:.1f}x the bare decode",
        },
    ]


if __name__ == "__main__":
    for row in run(float(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(row)
