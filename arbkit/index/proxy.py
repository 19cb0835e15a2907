"""Simple index proxies computed beside the replica, for comparison.

Both proxies use the venues that pass the replica's hard data-quality checks (`screen`:
two-sided, uncrossed, vouched for by the feed, younger than the lag threshold) but no
potentially-erroneous test, no depth and no cap: that is what makes them simple.

- ``median_mid``: the median of the venues' top-of-book mids.
- ``vw_mid``: the volume-weighted mid users have today: each venue's top-of-book mid weighted by
  the size quoted at its best bid plus its best ask, Σ mid·(bid size + ask size) / Σ (bid size +
  ask size), optionally over a chosen set of venues (users' version takes three exchanges).

Values are exact ratios of the ``*_e8`` inputs rounded to the index precision, like the replica.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from arbkit.core.book import BookView
from arbkit.index.params import PARAMS, RtiParams
from arbkit.index.rounding import round_e8
from arbkit.index.rti import screen

MEDIAN_MID = "median_mid"
VW_MID = "vw_mid"


@dataclass(frozen=True, slots=True)
class ProxyResult:
    """One proxy value (None when no venue is usable) and the venues behind it."""

    method: str
    now_ns: int
    value_e8: int | None
    venues_used: tuple[str, ...]
    excluded: dict[str, str]


def _usable(
    books: Iterable[BookView],
    now_ns: int,
    params: RtiParams,
    venues: Collection[str] | None = None,
) -> tuple[list[BookView], dict[str, str]]:
    used: list[BookView] = []
    excluded: dict[str, str] = {}
    for book in books:
        if venues is not None and book.venue not in venues:
            continue
        reason = screen(book, now_ns, params.lag_threshold_ns)
        if reason:
            excluded[book.venue] = reason
        else:
            used.append(book)
    used.sort(key=lambda b: b.venue)
    return used, dict(sorted(excluded.items()))


def median_mid(
    books: Iterable[BookView], now_ns: int, *, params: RtiParams = PARAMS["BRTI"]
) -> ProxyResult:
    """The median of the usable venues' mids."""
    used, excluded = _usable(books, now_ns, params)
    value = None
    if used:
        mids2 = sorted(b.bids[0][0] + b.asks[0][0] for b in used)
        h = len(mids2) // 2
        if len(mids2) % 2:
            value = round_e8(mids2[h], 2, params.decimals)
        else:
            value = round_e8(mids2[h - 1] + mids2[h], 4, params.decimals)
    return ProxyResult(MEDIAN_MID, now_ns, value, tuple(b.venue for b in used), excluded)


def vw_mid(
    books: Iterable[BookView],
    now_ns: int,
    *,
    params: RtiParams = PARAMS["BRTI"],
    venues: Collection[str] | None = None,
) -> ProxyResult:
    """Top-of-book mids weighted by best bid size + best ask size (over ``venues`` if given)."""
    used, excluded = _usable(books, now_ns, params, venues)
    value = None
    if used:
        num = den = 0
        for b in used:
            (bid, bid_size), (ask, ask_size) = b.bids[0], b.asks[0]
            weight = bid_size + ask_size
            num += (bid + ask) * weight
            den += weight
        value = round_e8(num, 2 * den, params.decimals)
    return ProxyResult(VW_MID, now_ns, value, tuple(b.venue for b in used), excluded)
