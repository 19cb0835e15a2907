"""Kalshi YES/NO bid book: snapshot + signed deltas, exact levels, validity one cannot ignore."""

from __future__ import annotations

import pytest

from arbkit.venues.kalshi.book import BookInvalidError, KalshiBook


def synced(yes: dict[int, int], no: dict[int, int], *, yes_scale: bool = False) -> KalshiBook:
    book = KalshiBook("M")
    book.reset(yes, no, yes_scale=yes_scale, sid=1, recv_ns=10)
    return book


def test_new_book_is_invalid_and_refuses_reads() -> None:
    book = KalshiBook("M")
    assert not book.valid
    assert book.quote() is None
    with pytest.raises(BookInvalidError, match="no snapshot yet"):
        book.levels("yes")


def test_quote_is_best_yes_bid_and_one_minus_best_no_bid() -> None:
    book = synced({800: 30000, 2200: 33300}, {5400: 2000, 5600: 14600})
    q = book.quote()
    assert q is not None
    assert (q.yes_bid_e4, q.yes_bid_qty_e2, q.yes_ask_e4, q.yes_ask_qty_e2) == (
        2200,
        33300,
        4400,
        14600,
    )
    assert q.no_bid_e4 == 5600
    assert book.levels("yes") == [(2200, 33300), (800, 30000)]
    assert book.levels("no") == [(5600, 14600), (5400, 2000)]
    assert book.levels("yes_ask") == [(4400, 14600), (4600, 2000)]


def test_signed_deltas_add_remove_at_zero_and_track_best() -> None:
    book = synced({800: 30000, 2200: 33300}, {5400: 2000})
    assert book.apply_delta(True, 2200, -33300, 20)  # best level removed at exactly 0
    assert book.levels("yes") == [(800, 30000)]
    assert book.apply_delta(True, 2500, 125, 21)  # new best
    assert book.apply_delta(False, 5400, -2000, 22)  # NO side empties
    q = book.quote()
    assert q is not None
    assert (q.yes_bid_e4, q.yes_bid_qty_e2, q.yes_ask_e4, q.updated_ns) == (2500, 125, None, 22)


def test_book_waiting_for_its_snapshot_ignores_deltas() -> None:
    book = synced({800: 100}, {})
    book.invalidate("seq gap")
    assert book.apply_delta(True, 800, -500, 20)  # no trouble reported: a snapshot is due
    assert (book.yes, book.updated_ns, book.invalid_reason) == ({800: 100}, 10, "seq gap")
    book.reset({900: 5}, {}, yes_scale=False, sid=1, recv_ns=30)
    assert book.levels("yes") == [(900, 5)]


def test_delta_below_zero_invalidates() -> None:
    book = synced({800: 100}, {})
    assert not book.apply_delta(True, 800, -101, 20)
    assert not book.valid
    assert book.quote() is None
    with pytest.raises(BookInvalidError, match="update was missed"):
        book.levels("yes")
    book.reset({800: 1}, {}, yes_scale=False, sid=1, recv_ns=30)
    assert book.valid


def test_crossed_book_is_invalid_until_uncrossed() -> None:
    book = synced({4000: 100}, {5000: 100})
    assert book.apply_delta(False, 6000, 100, 20)  # YES 0.40 + NO 0.60 = $1: would match
    assert book.crossed
    assert not book.valid
    assert book.quote() is None
    with pytest.raises(BookInvalidError, match="crossed"):
        book.levels("no")
    assert book.apply_delta(False, 6000, -100, 21)
    assert book.valid


def test_use_yes_price_no_levels_are_converted_to_the_no_leg() -> None:
    # use_yes_price: the NO bid at NO price 0.56 arrives as YES-scale 0.44 (a YES ask).
    book = synced({2200: 100}, {4400: 1000, 4600: 200}, yes_scale=True)
    assert book.no == {5600: 1000, 5400: 200}
    assert book.apply_delta(False, 4400, 500, 20)
    q = book.quote()
    assert q is not None
    assert (q.yes_ask_e4, q.yes_ask_qty_e2) == (4400, 1500)
    assert book.apply_delta(False, 4400, -1500, 21)
    q = book.quote()
    assert q is not None
    assert q.yes_ask_e4 == 4600


def test_snapshot_drops_zero_levels_and_empty_sides() -> None:
    book = synced({}, {5000: 0})
    q = book.quote()
    assert q is not None
    assert (q.yes_bid_e4, q.yes_ask_e4) == (None, None)
    with pytest.raises(ValueError, match="unknown side"):
        book.levels("bid")
