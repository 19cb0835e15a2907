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
    """Seven BTC books around $100,000 shaped like real ones: levels mostly a few cents apart
    (wider further out), sizes log-normal around 0.05 BTC with a few multi-BTC levels."""
    books = []
    for venue in VENUES:
        mid = 100_000 * 10**8 + rng.randint(-2000, 2000) * 10**6
        half = rng.randint(1, 500) * 10**6
        sides = []
        for sign in (-1, 1):
            price = mid + sign * half
            levels = []
            for i in range(LEVELS):
                size = min(int(rng.lognormvariate(-3.0, 1.5) * 10**8), 50 * 10**8) + 1
                levels.append((price, size))
                price += sign * rng.randint(1, 10 + i // 4) * 10**6
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
    note = f"{len(VENUES)} venues x {LEVELS} levels per side, realistic BTC books"
    # Every book new (the honest case): here every level lies within the cap window and the
    # curves' reach, so all 28,000 ints are read out of the level tuples.
    cold = _median_us(RtiCalculator(), [fresh[i % 20] for i in range(ROUNDS)], now_ns)
    # A 200 ms tick where two venues changed: their levels are read, five venues' arrays are kept.
    base = fresh[0]
    warm_calc = RtiCalculator()
    warm_calc.calculate(base, now_ns)
    mixed = [[*fresh[i % 19 + 1][:2], *base[2:]] for i in range(ROUNDS)]
    warm = _median_us(warm_calc, mixed, now_ns)
    # Books unchanged since the last call (same tuples): steps 2-5 are reused, only the data
    # checks and the result are made.
    cached = _median_us(warm_calc, [base] * ROUNDS, now_ns)
    rows = [
        ("index.rti_calc", cold, "every book new since the last call"),
        ("index.rti_calc_2_of_7_new", warm, "2 books new, 5 unchanged (their arrays kept)"),
        ("index.rti_calc_unchanged", cached, "no book changed (cap, curves and value reused)"),
    ]
    return [
        {
            "name": name,
            "value": round(us),
            "unit": "us",
            "target": TARGET,
            "note": f"{note}; {what}",
        }
        for name, us, what in rows
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
