"""Vectorised top of book and book-at-time against a plain dict book replayed row by row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from arbkit.core.events import EventRow, KalshiBookRow, Row, SpotBookRow, schema
from arbkit.replay import books
from arbkit.replay.books import (
    _best,
    _best_small,
    kalshi_book_at,
    kalshi_top_of_book,
    spot_top_of_book,
)

MARKETS = ("M1", "M2")
PRICES = (3000, 4000, 4500, 5000, 5500, 6000, 7000)


def frame(rows: Sequence[Row], row_type: type[Row]) -> pl.DataFrame:
    table = pa.Table.from_pylist(
        [{f: getattr(r, f) for f in r.__struct_fields__} for r in rows], schema=schema(row_type)
    )
    return pl.from_arrow(table)  # type: ignore[return-value]


@dataclass
class DictBook:
    """The reference: YES and NO bid dicts, synced from a snapshot until a gap."""

    yes: dict[int, int] = field(default_factory=dict)
    no: dict[int, int] = field(default_factory=dict)
    synced: bool = False

    def top(self) -> tuple[object, ...]:
        by = max(self.yes, default=None)
        bn = max(self.no, default=None)
        crossed = by is not None and bn is not None and by + bn >= 10_000
        return (
            by,
            None if by is None else self.yes[by],
            None if bn is None else 10_000 - bn,
            None if bn is None else self.no[bn],
            self.synced and not crossed,
        )


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("snapshot"),
            st.sampled_from(MARKETS),
            st.dictionaries(st.sampled_from(PRICES), st.integers(1, 500), max_size=4),
            st.dictionaries(st.sampled_from(PRICES), st.integers(1, 500), max_size=4),
        ),
        st.tuples(
            st.just("delta"),
            st.sampled_from(MARKETS),
            st.sampled_from(["yes", "no"]),
            st.tuples(st.sampled_from(PRICES), st.integers(-3, 400)),
        ),
        st.tuples(
            st.sampled_from(["gap", "disconnect"]),
            st.sampled_from([*MARKETS, "orderbook_delta", "ticker", ""]),
            st.none(),
            st.none(),
        ),
    ),
    max_size=60,
)


def replay(
    script: list[tuple[object, ...]],
) -> tuple[
    list[KalshiBookRow],
    list[EventRow],
    dict[tuple[str, int], tuple[object, ...]],
    dict[str, DictBook],
]:
    """Rows for the script and the reference top after each step (by market, recv_ns)."""
    books = {m: DictBook() for m in MARKETS}
    book_rows: list[KalshiBookRow] = []
    event_rows: list[EventRow] = []
    expected: dict[tuple[str, int], tuple[object, ...]] = {}
    seq = 0
    for i, (kind, market, a, b) in enumerate(script):
        t = 1_000 * (i + 1)
        seq += 1
        assert isinstance(market, str)
        if kind in ("gap", "disconnect"):
            event_rows.append(EventRow(t, "kalshi_ws", 1, kind, market, "", None, None))
            for m, book in books.items():
                if market in (m, "orderbook_delta", ""):  # a ticker-channel gap: no book harm
                    book.synced = False
            continue
        book = books[market]
        if kind == "snapshot":
            assert isinstance(a, dict)
            assert isinstance(b, dict)
            book.yes, book.no, book.synced = dict(a), dict(b), True
            for side, levels in (("yes", a), ("no", b)):
                book_rows += [
                    KalshiBookRow(t, None, market, side, p, q, True, 1, seq, 1)
                    for p, q in levels.items()
                ]
            if not a and not b:
                book_rows.append(KalshiBookRow(t, None, market, "", 0, 0, True, 1, seq, 1))
        else:
            assert isinstance(a, str)
            assert isinstance(b, tuple)
            levels = book.yes if a == "yes" else book.no
            price, qty = b
            current = levels.get(price, 0)
            delta = -current if qty < 0 else qty  # -n: remove the level; else add
            if delta == 0:
                continue
            book_rows.append(KalshiBookRow(t, t, market, a, price, delta, False, 1, seq, 1))
            if current + delta:
                levels[price] = current + delta
            else:
                levels.pop(price)
        if any(r.recv_ns == t for r in book_rows) and any(
            r.market == market and r.is_snapshot for r in book_rows
        ):
            expected[(market, t)] = book.top()
    return book_rows, event_rows, expected, books


@settings(max_examples=150, deadline=None)
@given(ops)
def test_kalshi_top_of_book_matches_a_dict_book(script: list[tuple[object, ...]]) -> None:
    book_rows, event_rows, expected, books = replay(script)
    tops = kalshi_top_of_book(frame(book_rows, KalshiBookRow), frame(event_rows, EventRow))
    got = {
        (r["market"], r["recv_ns"]): (
            r["yes_bid_e4"],
            r["yes_bid_qty_e2"],
            r["yes_ask_e4"],
            r["yes_ask_qty_e2"],
            r["valid"],
        )
        for r in tops.iter_rows(named=True)
    }
    assert got == expected
    for r in tops.iter_rows(named=True):  # the NO side is the mirror of the YES side
        assert r["no_ask_e4"] == (None if r["yes_bid_e4"] is None else 10_000 - r["yes_bid_e4"])
        assert r["no_bid_e4"] == (None if r["yes_ask_e4"] is None else 10_000 - r["yes_ask_e4"])
    if book_rows:
        for market, ref in books.items():
            events = frame(event_rows, EventRow)
            at = kalshi_book_at(frame(book_rows, KalshiBookRow), market, 10**12, events)
            if any(r.market == market and r.is_snapshot for r in book_rows):
                assert dict(at.yes.iter_rows()) == ref.yes
                assert dict(at.no.iter_rows()) == ref.no
                asks = at.yes_asks["price_e4"].to_list()  # the NO bids mirrored, best first
                assert asks == sorted(10_000 - p for p in ref.no)
                assert at.valid == ref.top()[-1]
            else:
                assert not at.valid


spot_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("snapshot"),
            st.dictionaries(st.integers(90, 100), st.integers(1, 9), min_size=1, max_size=5),
            st.dictionaries(st.integers(101, 110), st.integers(1, 9), min_size=1, max_size=5),
        ),
        st.tuples(
            st.just("set"),
            st.sampled_from(["bid", "ask"]),
            st.tuples(st.integers(90, 110), st.integers(0, 9)),
        ),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(spot_ops)
def test_spot_top_of_book_matches_a_dict_book(script: list[tuple[object, ...]]) -> None:
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    rows: list[Row] = []
    expected = {}
    synced = False
    for i, (kind, a, b) in enumerate(script):
        t = 1_000 * (i + 1)
        if kind == "snapshot":
            assert isinstance(a, dict)
            assert isinstance(b, dict)
            bids, asks, synced = dict(a), dict(b), True
            rows += [
                SpotBookRow(t, None, "v", "BTCUSD", "bid", p, q, True, None, None, 1)
                for p, q in a.items()
            ]
            rows += [
                SpotBookRow(t, None, "v", "BTCUSD", "ask", p, q, True, None, None, 1)
                for p, q in b.items()
            ]
        else:
            assert isinstance(a, str)
            assert isinstance(b, tuple)
            side = bids if a == "bid" else asks
            price, size = b
            rows.append(SpotBookRow(t, None, "v", "BTCUSD", a, price, size, False, None, None, 1))
            if size:
                side[price] = size
            else:
                side.pop(price, None)
        if synced or kind == "set":
            bb, ba = max(bids, default=None), min(asks, default=None)
            bq = None if bb is None else bids[bb]
            aq = None if ba is None else asks[ba]
            expected[t] = (bb, bq, ba, aq)
    tops = spot_top_of_book(frame(rows, SpotBookRow))
    got = {
        r["recv_ns"]: (r["bid_e8"], r["bid_size_e8"], r["ask_e8"], r["ask_size_e8"])
        for r in tops.iter_rows(named=True)
    }
    assert got == expected
    for r in tops.iter_rows(named=True):
        assert r["valid"] == (
            r["bid_e8"] is not None and r["ask_e8"] is not None and r["bid_e8"] < r["ask_e8"]
        )


@st.composite
def _block(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    n_levels = draw(st.integers(1, 12))
    n = draw(st.integers(1, 60))
    levels = draw(st.lists(st.integers(0, n_levels - 1), min_size=n, max_size=n))
    qtys = draw(st.lists(st.sampled_from([0, 0, 1, 5, 300]), min_size=n, max_size=n))
    return levels, qtys, n_levels


@given(_block(), st.booleans())
@settings(max_examples=200, deadline=None)
def test_small_blocks_take_the_same_best_levels_as_the_matrix_scan(
    block: tuple[list[int], list[int], int], highest: bool
) -> None:
    """Small blocks skip the matrix scan (`_best_small`); both must agree row for row."""
    levels, qtys, n_levels = (np.array(block[0]), np.array(block[1]), block[2])
    small = _best_small(levels, qtys, n_levels, highest=highest)
    with _matrix_only():
        scan = _best(levels, qtys, n_levels, highest=highest)
    assert small[0].tolist() == scan[0].tolist()
    assert small[1].tolist() == scan[1].tolist()


@contextmanager
def _matrix_only() -> Iterator[None]:
    """Every block through the matrix scan (no small-block shortcut)."""
    saved = books._SMALL_BLOCK
    books._SMALL_BLOCK = -1
    try:
        yield
    finally:
        books._SMALL_BLOCK = saved
