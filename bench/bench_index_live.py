"""The live BRTI pipeline: eight venue feeds on the runner plus the replica every 200 ms.

The embedded world runs in a separate process (``arbkit sim``), so the CPU measured here is
only the live pipeline's: sockets, parsing, books, views and the 5 Hz calculation.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

from arbkit.core.config import Endpoint
from arbkit.core.sink import NullSink
from arbkit.index.live import LiveIndex, LiveTick

SECONDS = 15.0


async def _world() -> tuple[asyncio.subprocess.Process, dict[str, Endpoint]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "arbkit.cli", "sim", stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    text = b""
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            msg = "arbkit sim exited before printing its endpoints"
            raise RuntimeError(msg)
        text += line
        try:
            described = json.loads(text)
        except ValueError:
            continue
        endpoints = described["endpoints"]
        return proc, {
            v: Endpoint(e["ws"], e["rest"]) for v, e in endpoints.items() if v != "kalshi"
        }


class _TimedIndex(LiveIndex):
    """A `LiveIndex` that keeps how long each calculation took."""

    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        super().__init__(endpoints, NullSink())
        self.durations: list[float] = []

    def compute(self, time_ns: int, *, grid_ns: int | None = None) -> LiveTick:
        start = time.perf_counter()
        tick = super().compute(time_ns, grid_ns=grid_ns)
        self.durations.append(time.perf_counter() - start)
        return tick


async def _measure() -> tuple[float, list[float], int]:
    proc, endpoints = await _world()
    try:
        live = _TimedIndex(endpoints)
        async with live:
            missing = await live.wait_ready(20)
            if missing:
                msg = f"no books from {missing}"
                raise RuntimeError(msg)
            live.durations.clear()
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(SECONDS)
            cpu1, wall1 = time.process_time(), time.monotonic()
        return (cpu1 - cpu0) / (wall1 - wall0), live.durations, len(endpoints)
    finally:
        proc.terminate()
        await proc.wait()


def run() -> list[dict[str, object]]:
    share, durations, venues = asyncio.run(_measure())
    ms = sorted(d * 1000 for d in durations)
    note = f"{venues} sim venues at default rates, {len(ms)} ticks over {SECONDS:g} s"
    return [
        {
            "name": "live BRTI pipeline CPU (feeds + replica at 5 Hz)",
            "value": round(100 * share, 1),
            "unit": "% of one core",
            "target": "<= 25 %",
            "note": note + "; the world runs in another process",
        },
        {
            "name": "live BRTI tick (views + replica + proxies + rows), median",
            "value": round(statistics.median(ms), 2),
            "unit": "ms",
            "target": "<= 20 ms",
            "note": note + "; full-depth views of the books that changed",
        },
        {
            "name": "live BRTI tick, p95",
            "value": round(ms[int(0.95 * (len(ms) - 1))], 2),
            "unit": "ms",
            "target": "<= 50 ms",
            "note": "the 200 ms period leaves ample headroom",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
