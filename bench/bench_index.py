"""Benchmark: one BRTI replica calculation over 7 venues x 1000 levels per side."""

from __future__ import annotations

import random
import statistics
import time

from arbkit.core.book import BookView
from arbkit.index.rti import RtiCalculator

VENUES = ("bitstamp", "bullish", "coinbase", "cryptocom", "gemini", "kraken", "lmax")
LEVELS = 1000
ROUNDS = 200
TARGET = "<= 1 ms"


def _books(rng: random.Random, now_ns: int) -> list[BookView]:
    """Seven BTC books around $100,000: $0.01-$3 apart, 0.0001-2 BTC per level."""
    books = []
    for venue in VENUES:
        mid = 100_000 * 10**8 + rng.randint(-2000, 2000) * 10**6
        half = rng.randint(1, 500) * 10**6
        sides = []
        for sign in (-1, 1):
            price = mid + sign * half
            levels = []
            for _ in range(LEVELS):
                levels.append((price, rng.randint(10**4, 2 * 10**8)))
                price += sign * rng.randint(1, 300) * 10**6
            sides.append(tuple(levels))
        books.append(BookView(venue, sides[0], sides[1], now_ns))
    return books


def _median_us(calc: RtiCalculator, sets: list[list[BookView]], now_ns: int) -> float:
    times = []
    for books in sets:
        t0 = time.perf_counter()
        calc.calculate(books, now_ns)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def run() -> list[dict[str, object]]:
    rng = random.Random(7)
    now_ns = time.time_ns()
    fresh = [_books(rng, now_ns) for _ in range(20)]
    cold = _median_us(RtiCalculator(), [fresh[i % 20] for i in range(ROUNDS)], now_ns)
    # Typical 200 ms tick: two venues changed since the previous calculation.
    base = fresh[0]
    mixed = [[*fresh[i % 19 + 1][:2], *base[2:]] for i in range(ROUNDS)]
    warm_calc = RtiCalculator()
    warm_calc.calculate(base, now_ns)
    warm = _median_us(warm_calc, mixed, now_ns)
    note = f"{len(VENUES)} venues x {LEVELS} levels per side"
    return [
        {
            "name": "index.rti_calc_all_books_new",
            "value": round(cold, 1),
            "unit": "us",
            "target": TARGET,
            "note": note + "; every book new since the last call",
        },
        {
            "name": "index.rti_calc_2_of_7_new",
            "value": round(warm, 1),
            "unit": "us",
            "target": TARGET,
            "note": note + "; 2 books new, 5 unchanged (per-venue arrays cached)",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
