"""Benchmark: the spot world's hot paths — book steps, frame encoding, a whole world tick."""

from __future__ import annotations

import time

from arbkit.sim.path import PricePath
from arbkit.sim.spot import SpotSim, VenueBook, VenueParams
from arbkit.sim.spot.coinbase import envelope, l2_event
from arbkit.sim.spot.kraken import book_frame, checksum

T0 = 1_790_000_000 * 1_000_000_000
STEP = 50_000_000


def _book(rate: float) -> VenueBook:
    book = VenueBook("coinbase", VenueParams(rate=rate), PricePath(1, T0), 1)
    book.step(T0, 0.0)
    return book


def _per_second(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def run() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []

    book = _book(rate=1000.0)  # the fast mode's order of magnitude
    changes = 0
    started = time.perf_counter()
    for i in range(1, 2001):
        changes += len(book.step(T0 + i * STEP, STEP / 1e9))
    took = time.perf_counter() - started
    out.append(
        {
            "name": "sim spot book changes generated",
            "value": round(_per_second(changes, took)),
            "unit": "changes/s",
            "target": ">= 20k/s",
            "note": f"one venue, ~{changes // 2000} changes per step, 400 levels per side",
        }
    )

    sample = book.step(T0 + 2001 * STEP, STEP / 1e9)[:10]
    n = 20_000
    started = time.perf_counter()
    for seq in range(n):
        envelope("l2_data", seq, T0, [l2_event("update", sample, T0)])
    out.append(
        {
            "name": "sim coinbase l2_data update encode",
            "value": round(_per_second(n, time.perf_counter() - started)),
            "unit": "frames/s",
            "target": ">= 5k/s",
            "note": "10 levels per frame, orjson",
        }
    )

    bids, asks = book.levels("bid", 10), book.levels("ask", 10)
    started = time.perf_counter()
    for _ in range(n):
        top_b, top_a = book.levels("bid", 10), book.levels("ask", 10)
        book_frame("update", bids[:3], asks[:3], checksum(top_a, top_b), T0)
    out.append(
        {
            "name": "sim kraken update encode + CRC32",
            "value": round(_per_second(n, time.perf_counter() - started)),
            "unit": "frames/s",
            "target": ">= 5k/s",
            "note": "3+3 levels per frame, checksum over the top 10 of each side",
        }
    )

    clock = [T0]
    sim = SpotSim(path=PricePath(2, T0), seed=2, now_ns=lambda: clock[0], autostep=False)
    steps = 200
    started = time.perf_counter()
    for _ in range(steps):
        clock[0] += STEP
        sim.step()
    took = time.perf_counter() - started
    out.append(
        {
            "name": "sim spot world tick (8 venues + BRTI every 200 ms)",
            "value": round(took / steps * 1e3, 3),
            "unit": "ms/tick",
            "target": "<= 10 ms",
            "note": "no clients connected; the default tick is 50 ms",
        }
    )
    return out


if __name__ == "__main__":
    for row in run():
        print(row)
