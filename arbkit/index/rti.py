"""A replica of the CME CF Real Time Index (BRTI and its siblings) from venue order books.

Methodology: the consensus reconstruction in ``brti-and-venues.md`` §1.3–1.4 (CF RTI
methodology v16.6 as rebuilt from CF's announcements and public reimplementations; the PDF
itself was not available). One calculation at time T:

1. Data quality. A venue is excluded when its book is empty or one-sided or crossed, not
   vouched for by its feed (``valid`` false), or older than the Retrieval Lag Threshold
   ("delayed"). Of the rest, a venue whose mid deviates more than PED from the median mid of
   the *other* remaining venues is "potentially erroneous" and stays excluded until it is back
   within ``ped_reentry`` (the calculator carries this state between calls).
2. Dynamic order-size cap (`order_size_cap`): sample every venue's L2 level within 5 % of the
   consolidated best bid/ask, at least 50 per side; the cap is the 1 %-trimmed mean plus 5
   standard deviations of the 1 %-winsorized sample.
3. Consolidated book of the capped levels; price-volume curves at spacing s (the marginal
   price reached filling v = s, 2s, ...), their mid and mid spread-volume curves.
4. Utilized depth v_T: the last v (walking from s) whose mid spread ≤ D, floored at s. When a
   side holds less than s in total the index is the consolidated top-of-book mid instead.
5. Value = Σ midPV(v)·λe^(−λv) / Σ λe^(−λv) over v = s..v_T, λ = 1/(0.3·v_T), rounded to the
   index precision (halves away from zero).

Ambiguities and the choices made here:
- "Orders" in the cap are each venue's L2 *levels* (venues publish aggregated levels), and the
  cap applies to each venue level before levels at the same price from different venues add up
  (the v1 wording: an order "enters the consolidated order book" with at most the cap).
- When a side has fewer than 50 levels within 5 %, levels beyond are added nearest first until
  50; every level tied with the 50th price enters too, so the sample never depends on venue
  order.
- The PED median is over the other venues that passed step 1's hard checks, whether or not they
  are themselves potentially erroneous. A venue with no such peer keeps its current PED status.
  A venue's PED status survives while it is absent, stale or invalid.
- Thresholds are strict: excluded when deviation > PED, re-admitted when deviation < re-entry.

Exactness: prices and sizes stay integer (``*_e8``) through the cap sample, the consolidated
book, the curves, the cap (its deviation term is an integer square root) and every threshold
test. Only the exponential weights are floating point (they are irrational anyway); the weighted
average is taken over offsets from the first mid, so float error stays far below 1e-8 USD, and
the final rounding is exact integer arithmetic.

Speed: reading the ints out of the books' level tuples is the largest cost, so only levels the
methodology can use are read, found by bisection on the sorted levels: sizes within the cap
window (step 2), prices and sizes within the price band where the mid spread can stay within D
(step 4). The rest is numpy over those arrays (partial sorts for the cap's extremes, one merge
per side). A venue's arrays are kept while its level tuples stay the same objects, and the whole
of steps 2–5 while every used venue's do, so a book source that hands out the same tuples while
a book is unchanged gets quiet venues (nearly) for free.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from itertools import chain
from operator import itemgetter, mul

import numpy as np
from numpy.typing import NDArray

from arbkit.core.book import BookView, Level
from arbkit.core.fixed import SPOT_DIGITS, format_fixed, to_decimal
from arbkit.index.params import PARAMS, RtiParams
from arbkit.index.rounding import round_e8

__all__ = [
    "PARAMS",
    "RtiCalculator",
    "RtiParams",
    "RtiResult",
    "VenueDetail",
    "order_size_cap",
    "screen",
]

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

USED = "used"
EXCLUDED = "excluded"

_PRICE = itemgetter(0)
_SIZE = itemgetter(1)


@dataclass(frozen=True, slots=True)
class VenueDetail:
    """One venue's line in a calculation: what it looked like and whether it was used.

    ``mid``/``spread`` are in quote currency (None for an empty or one-sided book);
    ``depth_used`` is the venue's share of the utilized depth in base units (the mean of its
    bid-side and ask-side volume consumed by the curves, a tie at the marginal price shared pro
    rata; it sums to the utilized depth over the used venues); ``age_s`` is seconds since the
    book last changed.
    """

    venue: str
    status: str
    reason: str
    mid: Decimal | None
    spread: Decimal | None
    depth_used: float | None
    age_s: float
    bid_levels: int
    ask_levels: int


@dataclass(frozen=True, slots=True)
class RtiResult:
    """One index value and how it was made.

    ``value_e8`` is rounded to the index precision (None when no venue is usable; ``note`` then
    says why); ``utilized_depth`` and ``cap`` are in base units; ``excluded`` maps each excluded
    venue to its reason; ``venues`` has one `VenueDetail` per venue given, sorted by name.
    ``note`` also flags the top-of-book mid fallback.
    """

    index_id: str
    now_ns: int
    value_e8: int | None
    value: Decimal | None
    utilized_depth: Decimal | None
    cap: Decimal | None
    venues_used: tuple[str, ...]
    excluded: dict[str, str]
    venues: tuple[VenueDetail, ...]
    note: str = ""


def _price(value_e8: int) -> str:
    return format_fixed(value_e8, SPOT_DIGITS, trim=True)


def screen(book: BookView, now_ns: int, lag_threshold_ns: int) -> str:
    """Why a book cannot be used at ``now_ns`` ("" when it can): erroneous or delayed data.

    Shared by the replica and the proxies so they judge venues alike.
    """
    if not book.bids:
        return "empty book" if not book.asks else "one-sided: no bids"
    if not book.asks:
        return "one-sided: no asks"
    if book.crossed:
        return f"crossed: best bid {_price(book.bids[0][0])} >= best ask {_price(book.asks[0][0])}"
    if not book.valid:
        return "invalid: the feed does not vouch for this book (gap, checksum or resync pending)"
    age = now_ns - book.updated_ns
    if age > lag_threshold_ns:
        return f"stale: {age / 1e9:.1f} s old (lag threshold {lag_threshold_ns / 1e9:g} s)"
    return ""


def _ints(values: Iterable[int], n: int) -> I64:
    """``n`` ints as an int64 array. Packing with `struct` reads Python ints about 1.5 times as
    fast as `np.fromiter` (and 5 times `np.array` of the level tuples); reading the level tuples is
    the largest cost of a calculation."""
    return np.frombuffer(struct.pack(f"{n}q", *values), np.int64)


def _sums(sizes: I64) -> tuple[int, int]:
    """Exact sum and sum of squares of sizes (Python ints: squares of ``*_e8`` sizes overflow
    int64).

    Vectorised while no partial sum can overflow: with ``x = h·2^b + l`` (``h, l < 2^b``,
    ``x < 2^2b``), ``x² = h²·2^2b + 2hl·2^b + l²`` and each of the three dot products stays below
    ``n·2^2b``.
    """
    n = len(sizes)
    if not n:
        return 0, 0
    split = (int(sizes.max()).bit_length() + 1) // 2
    if n << 2 * split < 1 << 63:
        high = sizes >> split
        low = sizes & ((1 << split) - 1)
        total_sq = (int(high @ high) << 2 * split) + (int(high @ low) << split + 1)
        return int(sizes.sum()), total_sq + int(low @ low)
    values = sizes.tolist()
    return sum(values), sum(map(mul, values, values))


def _cap(sample: I64, trim: Decimal, sigmas: int) -> int:
    """Step 2, the cap: trimmed mean + ``sigmas`` winsorized standard deviations of ``sample``.

    Exact: with ``k = floor(trim·n)``, the trimmed mean and the winsorized variance (ddof 1)
    follow from the sample's sum and sum of squares and its k+1 most extreme sizes at each end
    (found by partial sorts, `np.partition`); each term is floored to 1e-8 (the deviation term as
    ``isqrt``, no float involved).
    """
    n = len(sample)
    if n == 0:
        msg = "the order-size cap needs at least one order"
        raise ValueError(msg)
    num, den = trim.as_integer_ratio()
    k = n * num // den
    total, total_sq = _sums(sample)
    trimmed, w_sum, w_sq = total, total, total_sq
    if k:
        low = np.partition(sample, k)  # the k smallest first, then x[k]
        high = np.partition(sample, n - k - 1)  # x[n-k-1], then the k largest
        low_k, high_k = int(low[k]), int(high[n - k - 1])
        cut_sum, cut_sq = _sums(np.concatenate([low[:k], high[n - k :]]))
        trimmed = total - cut_sum
        w_sum = trimmed + k * (low_k + high_k)
        w_sq = total_sq - cut_sq + k * (low_k * low_k + high_k * high_k)
    cap = trimmed // (n - 2 * k)
    if n > 1:
        cap += math.isqrt(sigmas * sigmas * (n * w_sq - w_sum * w_sum) // (n * (n - 1)))
    return cap


def order_size_cap(sample: I64, trim: Decimal, sigmas: int) -> int:
    """The dynamic order-size cap (``*_e8``) of a sample of level sizes (``*_e8``).

    Trimmed mean of the sizes without the lowest and highest ``floor(trim·n)``, plus ``sigmas``
    sample standard deviations (ddof 1) of the sample winsorized at the same ranks; each term
    floored to 1e-8. A one-element sample has no deviation term.
    """
    return _cap(sample, trim, sigmas)


def _neg_price(level: Level) -> int:
    return -level[0]


_NONE: I64 = np.empty(0, np.int64)


class _Side:
    """One venue side: its level tuple and, converted on demand, int64 arrays of its leading
    levels' sort keys (the ask price, or minus the bid price, so keys ascend best first) and
    sizes. Kept while the venue hands out the same tuple."""

    __slots__ = ("_keys", "_sizes", "is_bid", "key", "levels")

    def __init__(self, levels: tuple[Level, ...], is_bid: bool) -> None:
        self.levels = levels
        self.is_bid = is_bid
        self.key: Callable[[Level], int] = _neg_price if is_bid else _PRICE
        self._keys = self._sizes = _NONE

    def count(self, limit_key: int) -> int:
        """How many leading levels have a key ≤ ``limit_key`` (a bisection: no level is read
        beyond the ones it probes)."""
        return bisect_right(self.levels, limit_key, key=self.key)

    def keys(self, n: int) -> I64:
        """The sort keys of the best ``n`` levels."""
        if len(self._keys) < n:
            prices = _ints(map(_PRICE, self.levels[:n]), n)
            self._keys = -prices if self.is_bid else prices
        return self._keys[:n]

    def sizes(self, n: int) -> I64:
        """The sizes of the best ``n`` levels."""
        if len(self._sizes) < n:
            self._sizes = _ints(map(_SIZE, self.levels[:n]), n)
        return self._sizes[:n]


def _sample_counts(sides: list[_Side], limit_key: int, min_orders: int) -> list[int]:
    """Step 2, one side's sample: how many leading levels of each venue enter it.

    The levels with key ≤ ``limit_key`` (within the window), widened nearest first to
    ``min_orders`` levels, every level tied with the last one added included.
    """
    counts = [s.count(limit_key) for s in sides]
    need = min_orders - sum(counts)
    if need <= 0:
        return counts
    # The `need` nearest levels beyond the window are among each venue's next `need`.
    beyond = sorted(
        chain.from_iterable(
            map(s.key, s.levels[c : c + need]) for s, c in zip(sides, counts, strict=True)
        )
    )
    if len(beyond) < need:
        return [len(s.levels) for s in sides]
    return [s.count(beyond[need - 1]) for s in sides]


def _cap_sample(
    bid_sides: list[_Side], ask_sides: list[_Side], b1: int, a1: int, p: RtiParams
) -> I64:
    """Step 2, the sample: sizes of every venue level with a bid price ≥ (1 − window)·b1 or an
    ask price ≤ (1 + window)·a1, each side widened to ``cap_min_orders`` levels if short.

    Within a venue the sample is a run of leading levels, found by bisection; only those sizes
    are read.
    """
    w_n, w_d = p.cap_window.as_integer_ratio()
    bid_counts = _sample_counts(bid_sides, -((w_d - w_n) * b1) // w_d, p.cap_min_orders)
    ask_counts = _sample_counts(ask_sides, (w_d + w_n) * a1 // w_d, p.cap_min_orders)
    return np.concatenate(
        [s.sizes(c) for s, c in zip(bid_sides + ask_sides, bid_counts + ask_counts, strict=True)]
    )


def _reach(
    bid_sides: list[_Side], ask_sides: list[_Side], b1: int, a1: int, deviation: Decimal
) -> tuple[list[int], list[int]]:
    """Step 4's bound: how many leading levels of each venue the curves can use while the mid
    spread stays within D.

    An ask above b1·(1 + D)/(1 − D), or a bid below a1·(1 − D)/(1 + D), is more than D from the
    mid with any level of the other side, so no step within D reaches it.
    """
    d_n, d_d = deviation.as_integer_ratio()
    bid_limit = -a1 * (d_d - d_n) // (d_d + d_n)
    ask_limit = b1 * (d_d + d_n) // (d_d - d_n)
    return [s.count(bid_limit) for s in bid_sides], [s.count(ask_limit) for s in ask_sides]


@dataclass(slots=True)
class _Consolidated:
    """The leading part of one side of the consolidated, capped book, sorted best first."""

    keys: I64
    sizes: I64
    venue: I64
    cum: I64

    @property
    def volume(self) -> int:
        return int(self.cum[-1]) if len(self.cum) else 0


def _consolidate(sides: list[_Side], counts: list[int], cap: int) -> _Consolidated:
    """Step 3, the consolidated book of one side: the leading ``counts`` levels of each venue,
    each capped, merged by price (a stable sort, so ties keep venue order)."""
    pairs = list(zip(sides, counts, strict=True))
    keys = np.concatenate([s.keys(c) for s, c in pairs])
    order = np.argsort(keys, kind="stable")
    sizes = np.minimum(np.concatenate([s.sizes(c) for s, c in pairs]), cap)[order]
    venue = np.repeat(np.arange(len(sides)), counts)[order]
    return _Consolidated(keys[order], sizes, venue, np.cumsum(sizes))


@dataclass(slots=True)
class _Curves:
    """Step 3's price-volume curves at v = s, 2s, ...: on each side the marginal level's index
    in the consolidated book and its price."""

    bid_index: I64
    ask_index: I64
    bid: I64
    ask: I64


def _curves(bids: _Consolidated, asks: _Consolidated, steps: int, spacing: int) -> _Curves:
    """Step 3, the curves: the price reached filling v = s, 2s, ... ``steps``·s on each side."""
    grid = np.arange(1, steps + 1, dtype=np.int64) * spacing
    bi = np.searchsorted(bids.cum, grid, side="left")
    ai = np.searchsorted(asks.cum, grid, side="left")
    return _Curves(bi, ai, -bids.keys[bi], asks.keys[ai])


def _utilized_depth(curves: _Curves, deviation: Decimal) -> int:
    """Step 4, the utilized depth in spacings: the steps before the first whose mid spread
    exceeds D (the mid spread never falls as v grows), at least one.

    The curves end where a side's volume within its bound (`_reach`), or in its whole book,
    ends; the next step, if any, lies beyond that bound, so beyond D.
    """
    d_n, d_d = deviation.as_integer_ratio()
    bid, ask = curves.bid, curves.ask
    within = (ask - bid) * d_d <= d_n * (ask + bid)
    return len(within) if bool(within.all()) else max(int(np.argmin(within)), 1)


def _value(curves: _Curves, n: int, weight_scale: Decimal, decimals: int) -> int:
    """Step 5, the value (``*_e8``): the exponentially weighted mid over the first ``n`` steps,
    rounded to ``decimals`` places exactly."""
    mid2 = curves.ask[:n] + curves.bid[:n]
    weights = np.exp(np.arange(1, n + 1) / (-float(weight_scale) * n))
    base = int(mid2[0])
    offset = float(np.dot((mid2 - base).astype(np.float64), weights) / weights.sum())
    exact = Fraction(base) + Fraction(offset)  # twice the unrounded value, in e8
    return round_e8(exact.numerator, 2 * exact.denominator, decimals)


def _share(book: _Consolidated, index: int, volume: int, n_venues: int) -> F64:
    """Each venue's part of the first ``volume`` of a side; a tie at the marginal price (the
    key at ``index``) is shared pro rata."""
    key = book.keys[index]
    start = int(np.searchsorted(book.keys, key, side="left"))
    end = int(np.searchsorted(book.keys, key, side="right"))
    shares = np.bincount(book.venue[:start], weights=book.sizes[:start], minlength=n_venues)
    better = int(book.cum[start - 1]) if start else 0
    at_total = int(book.cum[end - 1]) - better
    for venue, size in zip(
        book.venue[start:end].tolist(), book.sizes[start:end].tolist(), strict=True
    ):
        shares[venue] += size * (volume - better) / at_total
    return np.asarray(shares, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Core:
    """What the used venues' books alone determine: the value, utilized depth (in spacings),
    cap, each venue's depth share and a note (the mid-price fallback)."""

    value_e8: int
    steps: int
    cap: int
    shares: dict[str, float]
    note: str = ""


def _core(used: list[str], pairs: list[tuple[_Side, _Side]], p: RtiParams) -> _Core:
    """Steps 2–5 over the used venues' sides."""
    bid_sides = [b for b, _ in pairs]
    ask_sides = [a for _, a in pairs]
    b1 = -min(s.key(s.levels[0]) for s in bid_sides)
    a1 = min(s.key(s.levels[0]) for s in ask_sides)
    cap = _cap(_cap_sample(bid_sides, ask_sides, b1, a1, p), p.cap_trim, p.cap_sigmas)

    s = p.spacing_e8
    bid_counts, ask_counts = _reach(bid_sides, ask_sides, b1, a1, p.deviation)
    bids = _consolidate(bid_sides, bid_counts, cap)
    asks = _consolidate(ask_sides, ask_counts, cap)
    if min(bids.volume, asks.volume) < s:
        # The first step lies beyond the bound on a side (the curves use it whatever its mid
        # spread) or a side is thin: use the whole books.
        bids = _consolidate(bid_sides, [len(x.levels) for x in bid_sides], cap)
        asks = _consolidate(ask_sides, [len(x.levels) for x in ask_sides], cap)
    grid_n = min(bids.volume, asks.volume) // s
    if grid_n == 0:
        note = "mid-price fallback: a side holds less than one spacing of volume"
        return _Core(round_e8(b1 + a1, 2, p.decimals), 0, cap, dict.fromkeys(used, 0.0), note)

    curves = _curves(bids, asks, grid_n, s)
    n = _utilized_depth(curves, p.deviation)
    value_e8 = _value(curves, n, p.weight_scale, p.decimals)
    volume = n * s
    per_venue = (
        _share(bids, int(curves.bid_index[n - 1]), volume, len(used))
        + _share(asks, int(curves.ask_index[n - 1]), volume, len(used))
    ) / (2 * 10**SPOT_DIGITS)
    shares = {v: float(x) for v, x in zip(used, per_venue, strict=True)}
    return _Core(value_e8, n, cap, shares)


class RtiCalculator:
    """Computes one RTI from venue books, carrying the potentially-erroneous state between calls.

    A venue's arrays are kept while its book's level tuples stay the same objects, and the whole
    calculation proper (steps 2–5) while every used venue's do, so quiet venues cost little.
    """

    def __init__(self, params: RtiParams = PARAMS["BRTI"]) -> None:
        self.params = params
        self._ped_out: set[str] = set()
        self._sides_cache: dict[str, tuple[_Side, _Side]] = {}
        self._last: tuple[list[tuple[str, tuple[Level, ...], tuple[Level, ...]]], _Core] | None
        self._last = None

    @property
    def potentially_erroneous(self) -> frozenset[str]:
        """Venues currently held out as potentially erroneous."""
        return frozenset(self._ped_out)

    def _sides(self, book: BookView) -> tuple[_Side, _Side]:
        cached = self._sides_cache.get(book.venue)
        if cached is not None and cached[0].levels is book.bids and cached[1].levels is book.asks:
            return cached
        sides = (_Side(book.bids, is_bid=True), _Side(book.asks, is_bid=False))
        self._sides_cache[book.venue] = sides
        return sides

    def _core(self, books: list[BookView]) -> _Core:
        """Steps 2–5 for the used venues' books, reused while they are the same tuples."""
        inputs = [(b.venue, b.bids, b.asks) for b in books]
        last = self._last
        if (
            last is not None
            and len(last[0]) == len(inputs)
            and all(
                v == lv and b is lb and a is la
                for (v, b, a), (lv, lb, la) in zip(inputs, last[0], strict=True)
            )
        ):
            return last[1]
        core = _core([b.venue for b in books], [self._sides(b) for b in books], self.params)
        self._last = (inputs, core)
        return core

    def _potentially_erroneous(self, mids2: dict[str, int]) -> dict[str, str]:
        """Leave-one-out median test on twice-mids; updates the state, returns the exclusions."""
        p = self.params
        ped_n, ped_d = p.ped.as_integer_ratio()
        re_n, re_d = p.ped_reentry.as_integer_ratio()
        values = sorted(mids2.values())
        out: dict[str, str] = {}
        flagged: set[str] = set()
        for venue, m2 in mids2.items():
            was_out = venue in self._ped_out
            others = values.copy()
            others.remove(m2)
            if not others:
                if was_out:
                    flagged.add(venue)
                    out[venue] = "potentially erroneous: no other valid venue to compare with"
                continue
            h = len(others) // 2
            med = 2 * others[h] if len(others) % 2 else others[h - 1] + others[h]  # 4 x median
            dev = abs(2 * m2 - med)
            if was_out and dev * re_d >= re_n * med:
                out[venue] = (
                    f"potentially erroneous: mid still {dev / med:.2%} from the median of the "
                    f"other venues (re-admitted below {p.ped_reentry:.1%})"
                )
            elif not was_out and dev * ped_d > ped_n * med:
                out[venue] = (
                    f"potentially erroneous: mid {dev / med:.2%} from the median of the other "
                    f"venues (PED {p.ped:.1%})"
                )
            else:
                continue
            flagged.add(venue)
        self._ped_out -= mids2.keys() - flagged
        self._ped_out |= flagged
        return out

    def calculate(self, books: Iterable[BookView], now_ns: int) -> RtiResult:
        """The index at ``now_ns`` from the latest book of each venue (one book per venue)."""
        p = self.params
        views: dict[str, BookView] = {}
        for book in books:
            if book.venue in views:
                msg = f"two books for venue {book.venue!r}; pass one book per venue"
                raise ValueError(msg)
            views[book.venue] = book
        excluded: dict[str, str] = {}
        mids2: dict[str, int] = {}
        for name, book in views.items():
            reason = screen(book, now_ns, p.lag_threshold_ns)
            if reason:
                excluded[name] = reason
            else:
                mids2[name] = book.bids[0][0] + book.asks[0][0]
        excluded.update(self._potentially_erroneous(mids2))
        used = sorted(v for v in mids2 if v not in excluded)
        if not used:
            note = (
                "no venue books given"
                if not views
                else f"no valid venue: all {len(views)} venues excluded"
            )
            return self._result(views, now_ns, excluded, used, note=note)

        core = self._core([views[v] for v in used])
        return self._result(
            views,
            now_ns,
            excluded,
            used,
            core.value_e8,
            core.steps,
            core.cap,
            core.shares,
            core.note,
        )

    def _result(
        self,
        views: dict[str, BookView],
        now_ns: int,
        excluded: dict[str, str],
        used: list[str],
        value_e8: int | None = None,
        steps: int | None = None,
        cap: int | None = None,
        shares: dict[str, float] | None = None,
        note: str = "",
    ) -> RtiResult:
        details = []
        for name in sorted(views):
            book = views[name]
            mid = spread = None
            if book.bids and book.asks:
                bb, ba = book.bids[0][0], book.asks[0][0]
                mid = to_decimal(bb + ba, SPOT_DIGITS) / 2
                spread = to_decimal(ba - bb, SPOT_DIGITS)
            reason = excluded.get(name, "")
            details.append(
                VenueDetail(
                    venue=name,
                    status=EXCLUDED if reason else USED,
                    reason=reason,
                    mid=mid,
                    spread=spread,
                    depth_used=None if shares is None else shares.get(name),
                    age_s=(now_ns - book.updated_ns) / 1e9,
                    bid_levels=len(book.bids),
                    ask_levels=len(book.asks),
                )
            )
        return RtiResult(
            index_id=self.params.index_id,
            now_ns=now_ns,
            value_e8=value_e8,
            value=None
            if value_e8 is None
            else to_decimal(value_e8, SPOT_DIGITS).quantize(
                Decimal(1).scaleb(-self.params.decimals)
            ),
            utilized_depth=None if steps is None else steps * self.params.spacing,
            cap=None if cap is None else to_decimal(cap, SPOT_DIGITS),
            venues_used=tuple(used),
            excluded={k: excluded[k] for k in sorted(excluded)},
            venues=tuple(details),
            note=note,
        )
