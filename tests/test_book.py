"""The shared L2 book: exact levels, ordering, depth walk, truncation, views; vs a dict model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbkit.core.book import ASK, BID, BookChanges, BookView, L2Book, Level, SideChanges


def _book() -> L2Book:
    book = L2Book("coinbase", "BTC-USD")
    book.apply_snapshot(
        bids=[(100_00, 1), (99_00, 2), (101_00, 3), (98_00, 0)],
        asks=[(103_00, 5), (102_00, 4), (104_00, 6)],
        updated_ns=7,
    )
    return book


def test_snapshot_orders_sides_best_first_and_skips_zero_sizes() -> None:
    book = _book()
    assert book.bids.top() == [(101_00, 3), (100_00, 1), (99_00, 2)]
    assert book.asks.top() == [(102_00, 4), (103_00, 5), (104_00, 6)]
    assert book.top(2) == ([(101_00, 3), (100_00, 1)], [(102_00, 4), (103_00, 5)])
    assert (book.best_bid, book.best_ask) == (101_00, 102_00)
    assert book.bids.best() == (101_00, 3)
    assert 98_00 not in book.bids
    assert book.updated_ns == 7


def test_set_and_delete_levels() -> None:
    book = _book()
    assert book.set(BID, 101_50, 9)
    assert book.best_bid == 101_50
    assert book.set(BID, 101_50, 2)  # replace size, no new level
    assert book.bids.top(1) == [(101_50, 2)]
    assert book.delete(BID, 101_50)
    assert not book.delete(BID, 101_50)  # absent level: nothing changed
    assert book.set(ASK, 102_00, 0)
    assert book.best_ask == 103_00
    assert len(book.asks) == 2
    with pytest.raises(ValueError, match="use 'bid' or 'ask'"):
        book.set("offer", 1, 1)


def test_depth_walk() -> None:
    book = _book()
    assert book.asks.size_through(103_00) == 9
    assert book.asks.size_through(101_00) == 0
    assert book.bids.size_through(100_00) == 4
    assert book.bids.size_through(1) == 6
    assert book.asks.price_for_size(4) == 102_00
    assert book.asks.price_for_size(5) == 103_00
    assert book.asks.price_for_size(15) == 104_00
    assert book.asks.price_for_size(16) is None
    assert book.bids.price_for_size(4) == 100_00


def test_truncate_returns_dropped_prices() -> None:
    book = _book()
    assert book.bids.truncate(1) == [100_00, 99_00]
    assert book.bids.top() == [(101_00, 3)]
    assert book.asks.truncate(5) == []
    book.truncate(2)
    assert book.asks.prices() == [102_00, 103_00]


def test_crossed_and_view() -> None:
    book = _book()
    view = book.view(depth=2)
    assert view == BookView("coinbase", ((101_00, 3), (100_00, 1)), ((102_00, 4), (103_00, 5)), 7)
    assert view.valid
    book.set(BID, 102_00, 1)
    assert book.crossed
    assert not book.view().valid  # a crossed book is never vouched for
    assert book.view().crossed
    book.valid = False
    book.delete(BID, 102_00)
    assert not book.crossed
    assert not book.view().valid
    book.clear()
    assert book.best_bid is None
    assert book.bids.best() is None
    assert book.view().bids == ()


def test_view_is_the_same_object_until_the_book_changes() -> None:
    """The index caches per venue by identity: a quiet book must hand out the same view."""
    book = _book()
    view = book.view(2)
    assert book.view(2) is view
    full = book.view()
    assert full is not view
    assert full.bids == ((101_00, 3), (100_00, 1), (99_00, 2))
    assert book.view(2) is view  # each depth keeps its own view
    assert book.view() is full

    book.updated_ns = 8  # time or verdict moved, levels did not: same level tuples
    moved = book.view(2)
    assert moved is not view
    assert moved.updated_ns == 8
    assert moved.bids is view.bids
    assert moved.asks is view.asks
    assert book.view(2) is moved
    book.valid = False
    invalid = book.view(2)
    assert not invalid.valid
    assert invalid.bids is view.bids
    book.valid = True

    book.set(ASK, 110_00, 1)  # any change, even below the depth shown, makes a new view
    changed = book.view(2)
    assert changed is not moved
    assert changed == moved
    assert book.view(2) is changed
    book.set(BID, 101_00, 9)
    assert book.view(2).bids == ((101_00, 9), (100_00, 1))
    book.truncate(1)
    assert book.view().asks == ((102_00, 4),)
    book.apply_snapshot([(1_00, 1)], [(2_00, 2)])
    assert book.view(2) == BookView("coinbase", ((1_00, 1),), ((2_00, 2),), 8)
    book.set(BID, 2_00, 1)  # crossed: the same levels are never vouched for
    assert not book.view(2).valid
    book.clear()
    assert book.view(2).bids == ()


def test_keys_are_best_first_sort_keys() -> None:
    book = _book()
    assert book.bids.keys(2) == [-101_00, -100_00]
    assert book.asks.keys() == [102_00, 103_00, 104_00]
    assert book.asks.keys(0) == []


_prices = st.integers(min_value=1, max_value=60)
_ops = st.lists(
    st.tuples(st.sampled_from([BID, ASK]), _prices, st.integers(min_value=0, max_value=5)),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(ops=_ops, depth=st.integers(min_value=1, max_value=30), n=st.integers(0, 40))
def test_random_ops_match_a_dict_model(ops: list[tuple[str, int, int]], depth: int, n: int) -> None:
    book = L2Book()
    model: dict[str, dict[int, int]] = {BID: {}, ASK: {}}
    for i, (side, price, size) in enumerate(ops):
        book.set(side, price, size)
        if size:
            model[side][price] = size
        else:
            model[side].pop(price, None)
        if i % 17 == 16:  # now and then, Kraken-style truncation
            book.truncate(depth)
            for s, reverse in ((BID, True), (ASK, False)):
                keep = sorted(model[s], reverse=reverse)[:depth]
                model[s] = {p: model[s][p] for p in keep}
        if i % 5 == 0:  # a cached view must never outlive a change
            view = book.view(n)
            assert view.bids == tuple(sorted(model[BID].items(), reverse=True)[:n])
            assert view.asks == tuple(sorted(model[ASK].items())[:n])
    bids = sorted(model[BID].items(), reverse=True)
    asks = sorted(model[ASK].items())
    assert book.view(n).bids == tuple(bids[:n])
    assert book.bids.top() == bids
    assert book.asks.top() == asks
    assert book.top(n) == (bids[:n], asks[:n])
    assert book.best_bid == (bids[0][0] if bids else None)
    assert book.crossed == bool(bids and asks and bids[0][0] >= asks[0][0])
    want = sum(s for _, s in asks[:3])
    assert book.asks.price_for_size(want) == (asks[min(2, len(asks) - 1)][0] if asks else None)
    if bids:
        assert book.bids.size_through(bids[-1][0]) == sum(s for _, s in bids)


@given(levels=st.lists(st.tuples(_prices, st.integers(0, 5)), max_size=50))
def test_snapshot_matches_a_dict_model(levels: list[tuple[int, int]]) -> None:
    book = L2Book()
    book.set(BID, 999, 1)  # replaced by the snapshot
    book.apply_snapshot(levels, levels)
    model = {p: s for p, s in dict(levels).items() if s}
    assert book.bids.top() == sorted(model.items(), reverse=True)
    assert book.asks.top() == sorted(model.items())


def _applied(base: tuple[Level, ...], changes: SideChanges, sign: int) -> tuple[Level, ...]:
    """``base`` with ``changes`` applied (keys are sort keys: the price times ``sign``)."""
    levels = dict(base)
    for key, was, size in zip(changes.keys, changes.before, changes.sizes, strict=True):
        assert levels.get(key * sign, 0) == was
        if size:
            levels[key * sign] = size
        else:
            del levels[key * sign]
    return tuple(sorted(levels.items(), reverse=sign < 0))


_book_ops = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([BID, ASK]), _prices, st.integers(min_value=0, max_value=5)),
        st.tuples(st.just("truncate"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("snapshot"), st.integers(0, 40), st.integers(0, 2**16)),
        st.tuples(st.just("burst"), st.integers(0, 1100), st.integers(0, 2**16)),
        st.tuples(st.just("clear"), st.just(0), st.just(0)),
        st.tuples(st.just("view"), st.sampled_from([0, 1, 5]), st.just(0)),
        st.tuples(st.just("full"), st.just(0), st.just(0)),
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(ops=_book_ops)
def test_views_say_exactly_what_changed(ops: list[tuple[str, int, int]]) -> None:
    """After any mix of sets, deletes, truncations, snapshots, bursts (a log that overflows)
    and clears between views, a full view's levels are the book's, and its `SideChanges`
    applied to the previous full view's levels give them; a side that did not change keeps
    its tuple."""
    book = L2Book()
    held = book.view()
    for kind, a, b in [*ops, ("full", 0, 0)]:
        if kind in (BID, ASK):
            book.set(kind, a, b)
        elif kind == "truncate":
            book.truncate(a)
        elif kind == "snapshot":
            levels = [(1 + (b * (i + 7)) % 60, (b >> i) % 4) for i in range(a)]
            book.apply_snapshot(levels, levels[::-1])
        elif kind == "burst":
            for i in range(a):
                book.set(BID if i % 2 else ASK, 1 + (b * (i + 3)) % 60, (b + i) % 6)
        elif kind == "clear":
            book.clear()
        elif kind == "view":
            part = book.view(a)
            assert part.bids == tuple(book.bids.top(a))
            assert part.changes is None  # depth-limited: nothing to patch
        else:
            view = book.view()
            assert view.bids == tuple(book.bids.top())
            assert view.asks == tuple(book.asks.top())
            assert view.changes is not None
            for side, sign in (("bids", -1), ("asks", 1)):
                before, now = getattr(held, side), getattr(view, side)
                changes = getattr(view.changes, side)
                if now is before:
                    continue
                if changes is not None and changes.base is before:
                    assert _applied(before, changes, sign) == now
                    assert changes.keys == sorted(changes.keys)
            held = view


def test_changes_after_a_few_edits_and_a_rebuild() -> None:
    book = _book()
    first = book.view()
    book.set(BID, 100_50, 7)
    book.set(BID, 99_00, 0)
    book.set(BID, 98_00, 0)  # absent: not a change
    second = book.view()
    assert second.asks is first.asks  # untouched side: same tuple
    assert second.changes is not None
    assert second.changes.bids == SideChanges(first.bids, [-100_50, -99_00], [0, 2], [7, 0])
    book.set(ASK, 102_00, 4)  # same size: nothing changed
    assert book.view().asks is first.asks
    held = book.view()
    book.apply_snapshot([(1_00, 1), *held.bids[1:]], [(2_00, 2)])  # a snapshot is diffed ...
    changes = book.view().changes
    assert changes is not None
    assert changes.bids == SideChanges(held.bids, [-101_00, -1_00], [3, 0], [0, 1])
    book.clear()
    assert book.view().changes == BookChanges(None, None)  # ... a clear rebuilds: no lineage
