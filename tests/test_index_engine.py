"""The I/O-free index engine: book views and a time in, the tick and its rows out, the same
computation `LiveIndex` drives from live feeds (here from hand-built views, as a replay would)."""

from __future__ import annotations

from arbkit.core.book import BookView, L2Book
from arbkit.index.engine import IndexEngine
from arbkit.index.proxy import median_mid, vw_mid
from arbkit.index.report import index_rows
from arbkit.index.rti import RtiCalculator
from arbkit.index.settlement import SECOND_NS

E8 = 10**8
T0 = 1_800_000_000 * SECOND_NS
STEP = 200_000_000


def views(i: int) -> list[BookView]:
    """Five venues around $100,000 that drift by $1 a tick, updated at tick ``i``'s time."""
    out = []
    for k, venue in enumerate(("bitstamp", "coinbase", "gemini", "kraken", "lmax")):
        book = L2Book(venue)
        mid = (100_000 + i + k) * E8
        bids = [(mid - (j + 1) * E8, (j + 1) * E8 // 10) for j in range(20)]
        asks = [(mid + (j + 1) * E8, (j + 1) * E8 // 10) for j in range(20)]
        book.apply_snapshot(bids, asks, T0 + i * STEP)
        out.append(book.view())
    return out


def test_engine_tick_is_the_calculation_and_its_rows() -> None:
    engine = IndexEngine(official_max_age_ns=10 * SECOND_NS)
    reference = RtiCalculator()
    engine.official(T0 - 1, 100_001 * E8)
    for i in range(10):
        books, t = views(i), T0 + i * STEP
        tick, rows = engine.tick(books, t)
        expected = reference.calculate(books, t)
        proxies = (median_mid(books, t), vw_mid(books, t))
        assert tick.result == expected
        assert tick.proxies == proxies
        assert rows == index_rows(expected, proxies, official_e8=100_001 * E8)
        assert tick.official_e8 == 100_001 * E8
        assert tick.diff_e8 == expected.value_e8 - 100_001 * E8  # type: ignore[operator]
        assert engine.latest is tick
    assert tick.result.value_e8 is not None


def test_engine_history_files_ticks_on_their_grid_and_settles() -> None:
    engine = IndexEngine(history_s=2.0)
    values = {}
    for i in range(60 * 5 + 1):
        grid = T0 + i * STEP
        tick, _ = engine.tick(views(i), grid + 3_000_000, grid_ns=grid)  # 3 ms late
        values[grid] = tick.result.value_e8
    assert len(engine.history()) == 10  # 2 s of 200 ms ticks
    # Each second's value is the tick scheduled on it, not the late calculation's second.
    seconds = engine.one_second_values()
    last = T0 + 300 * STEP
    assert seconds[last] == values[last]
    assert seconds[last] is not None
    assert last + SECOND_NS not in seconds
    settle = engine.settlement(last, window_s=2)  # seconds last-2 (gone from history), last-1
    assert (settle.count, settle.missing) == (1, (last - 2 * SECOND_NS,))
    assert settle.value_e8 == values[last - SECOND_NS]
