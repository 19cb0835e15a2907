"""Benchmark: one BRTI replica calculation over 7 venues x 1000 levels per side."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from arbkit.core.book import BookView, L2Book
from arbkit.index.rti import RtiCalculator

VENUES = ("bitstamp", "bullish", "coinbase", "cryptocom", "gemini", "kraken", "lmax")
LEVELS = 1000
ROUNDS = 200
CHANGES = 4
"""Level changes per book between two live ticks (size changes, inserts, deletes)."""
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
                levels.append((price, _size(rng)))
                price += sign * rng.randint(1, 10 + i // 4) * 10**6
            sides.append(tuple(levels))
        books.append(BookView(venue, sides[0], sides[1], now_ns))
    return books


def _size(rng: random.Random) -> int:
    return min(int(rng.lognormvariate(-3.0, 1.5) * 10**8), 50 * 10**8) + 1


def _change(rng: random.Random, book: L2Book) -> None:
    """One random level change, most near the top: a new size (half the time), a delete, or
    a new level one cent beside an existing one (never crossing the other side)."""
    side = book.bids if rng.random() < 0.5 else book.asks
    i = min(int(rng.expovariate(1 / 40)), len(side) - 1)
    price = side.price_at(i)
    assert price is not None
    action = rng.random()
    if action < 0.5:
        side.set(price, _size(rng))
    elif action < 0.75 and len(side) > 1:
        side.set(price, 0)
    else:
        step = 10**6 if side.is_bid else -(10**6)  # toward the other side ...
        if i == 0:
            step = -step  # ... except at the top: the new level goes behind the best
        if price + step not in side:
            side.set(price + step, _size(rng))


def _median_us(run: Callable[[int], object], rounds: int = ROUNDS) -> float:
    """Median CPU time of ``run(i)`` (the machine is shared: wall time counts other work)."""
    times = []
    for i in range(rounds):
        t0 = time.process_time_ns()
        run(i)
        times.append(time.process_time_ns() - t0)
    return statistics.median(times) / 1e3


def _live_tick_us(
    rng: random.Random,
    base: list[BookView],
    now_ns: int,
    *,
    patch: bool = True,
    changes: int = CHANGES,
) -> float:
    """The live tick: ``changes`` random level changes in every book (not timed), then every
    book's `L2Book.view` and one calculation (timed together, as `LiveIndex` pays them).
    Without ``patch`` the calculator gets the views without their `BookView.changes` (so it
    reads and merges every level, as before views said what changed)."""
    books = []
    for view in base:
        book = L2Book(view.venue)
        book.apply_snapshot(view.bids, view.asks, now_ns)
        books.append(book)
    calc = RtiCalculator()
    calc.calculate([b.view() for b in books], now_ns)

    times = []
    for _ in range(ROUNDS):
        for book in books:
            for _ in range(changes):
                _change(rng, book)
            book.updated_ns = now_ns
        t0 = time.process_time_ns()
        views = [b.view() for b in books]
        if not patch:
            views = [BookView(v.venue, v.bids, v.asks, v.updated_ns, v.valid) for v in views]
        calc.calculate(views, now_ns)
        times.append(time.process_time_ns() - t0)
    return statistics.median(times) / 1e3


def run() -> list[dict[str, object]]:
    rng = random.Random(7)
    now_ns = time.time_ns()
    fresh = [_books(rng, now_ns) for _ in range(20)]
    note = f"{len(VENUES)} venues x {LEVELS} levels per side, realistic BTC books"
    # The live case: L2Books changed by a few levels per tick hand out views whose arrays
    # are patched, not rebuilt; view() + calculate() per tick.
    live = _live_tick_us(rng, fresh[0], now_ns)
    busy = _live_tick_us(rng, fresh[0], now_ns, changes=5 * CHANGES)
    unpatched = _live_tick_us(rng, fresh[0], now_ns, patch=False)
    # Every book new as hand-built tuples (no arrays): here every level lies within the cap
    # window and the curves' reach, so all 28,000 ints are read out of the level tuples.
    cold_calc = RtiCalculator()
    cold = _median_us(lambda i: cold_calc.calculate(fresh[i % 20], now_ns))
    # A tick where two tuple-only venues changed: their levels are read, five venues' arrays
    # are kept.
    base = fresh[0]
    warm_calc = RtiCalculator()
    warm_calc.calculate(base, now_ns)
    mixed = [[*fresh[i % 19 + 1][:2], *base[2:]] for i in range(ROUNDS)]
    warm = _median_us(lambda i: warm_calc.calculate(mixed[i], now_ns))
    # Books unchanged since the last call (same tuples): steps 2-5 are reused, only the data
    # checks and the result are made.
    cached = _median_us(lambda i: warm_calc.calculate(base, now_ns))
    rows = [
        (
            "index.rti_tick_live",
            live,
            TARGET,
            f"median CPU time of {ROUNDS} ticks: {CHANGES} random level changes per L2Book "
            "(size changes, deletes, inserts; not timed), then view() of all 7 books + "
            "calculate() (timed), as LiveIndex pays per tick",
        ),
        (
            "index.rti_tick_live_busy",
            busy,
            "reference",
            f"the same with {5 * CHANGES} level changes per book per tick (a busy venue)",
        ),
        (
            "index.rti_tick_live_unpatched",
            unpatched,
            "reference",
            "the same ticks with the views' changes withheld: the calculator reads and merges "
            "every level (the views' tuples are still patched)",
        ),
        (
            "index.rti_calc_cold_tuples",
            cold,
            "reference",
            "every book new since the last call, hand-built tuple views (no arrays): all "
            "28,000 ints read from the level tuples",
        ),
        (
            "index.rti_calc_2_of_7_new",
            warm,
            "reference",
            "tuple views, 2 books new, 5 unchanged (their arrays kept)",
        ),
        (
            "index.rti_calc_unchanged",
            cached,
            "reference",
            "no book changed (cap, curves and value reused)",
        ),
    ]
    return [
        {
            "name": name,
            "value": round(us),
            "unit": "us",
            "target": target,
            "note": f"{note}; {what}",
        }
        for name, us, target, what in rows
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
