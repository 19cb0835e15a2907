"""A replica of the CME CF Real Time Index (BRTI and its siblings) from venue order books.

Methodology: the consensus reconstruction in ``brti-and-venues.md`` §1.3–1.4 (CF RTI
methodology v16.6 as rebuilt from CF's announcements and public reimplementations; the PDF
itself was not available). One calculation at time T:

1. Data quality. A venue is excluded when its book is empty or one-sided or crossed, not
   vouched for by its feed (``valid`` false), holds a price beyond ±2^56 e-8 (implausible; our
   own limit, see `MAX_PRICE_E8`), or is older than the Retrieval Lag Threshold ("delayed").
   Of the rest, a venue whose mid deviates more than PED from the median mid of
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

Speed (measured by ``bench/bench_index.py`` on an unoptimized CPython 3.11 build, where every
Python-level step and every numpy call costs microseconds): each side's levels of the used
venues are merged into one sorted int64 table of composite keys (sort key·2^bits + venue, so
ties keep venue order) and sizes. The cap sample and the consolidated book are leading runs of
it (found by `searchsorted`); the cap needs only the sample's exact sum and sum of squares and
its 1 % extremes; the curves are a cumsum and one `searchsorted` per side; depth shares are one
`bincount` per side.

The table is made two ways. From hand-built views (tuples only) the levels are read out of the
tuples (about 50 ns an int here: with 7 × 1000 levels a side the read and the merge are most of
a 3 ms calculation), only those the methodology can use (within the cap window or the curves'
reach, found by bisection). From `L2Book.view`, whose `BookView.changes` say which levels
changed since the previous view, the calculator keeps last tick's tables, their sums and the
sample's tails (`_Tails`), and patches them with those few levels: no level is read and no
merge is sorted; a live tick where every book moved by a few levels costs about a third of a
cold calculation (view() of the 7 books included). Results are identical either way (tested).
A venue's side is kept while its level tuple stays the same object, and the whole of steps 2–5
while every used venue's do, so quiet venues cost (nearly) nothing.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from operator import itemgetter, mul

import numpy as np
from numpy.typing import NDArray

from arbkit.core.book import BookView, Level, SideChanges
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


MAX_PRICE_E8 = 1 << 56
"""A price beyond ± this (about $7e8 a unit) makes a book implausible; the calculation's
composite keys (price·2^bits + venue in an int64) rely on it."""


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
    low, high = min(book.bids[-1][0], book.asks[0][0]), max(book.bids[0][0], book.asks[-1][0])
    if max(-low, high) > MAX_PRICE_E8:
        return f"implausible prices: levels from {_price(low)} to {_price(high)} (beyond 2^56 e-8)"
    age = now_ns - book.updated_ns
    if age > lag_threshold_ns:
        return f"stale: {age / 1e9:.1f} s old (lag threshold {lag_threshold_ns / 1e9:g} s)"
    return ""


def _ints(values: Iterable[int], n: int) -> I64:
    """``n`` ints as an int64 array. Packing with `struct` reads Python ints about 1.5 times as
    fast as `np.fromiter` (and 5 times `np.array` of the level tuples); reading the level tuples
    is the largest cost of a calculation that cannot patch what it had."""
    return np.frombuffer(struct.pack(f"{n}q", *values), np.int64)


def _sums(sizes: I64) -> tuple[int, int]:
    """Exact sum and sum of squares of sizes (Python ints: squares of ``*_e8`` sizes overflow
    int64).

    Vectorised while no partial sum can overflow: with ``x = h·2^b + l`` (``h, l < 2^b``,
    ``x < 2^2b``), ``x² = h²·2^2b + 2hl·2^b + l²`` and each of the three dot products stays below
    ``n·2^2b``.
    """
    n = len(sizes)
    if n <= 256:  # a few numpy calls cost more than Python arithmetic here
        values = sizes.tolist()
        return sum(values), sum(map(mul, values, values))
    split = (int(sizes.max()).bit_length() + 1) // 2
    if n << 2 * split < 1 << 63:
        high = sizes >> split
        low = sizes & ((1 << split) - 1)
        total_sq = (int(high @ high) << 2 * split) + (int(high @ low) << split + 1)
        return int(sizes.sum()), total_sq + int(low @ low)
    values = sizes.tolist()
    return sum(values), sum(map(mul, values, values))


def _cap(sample: I64, trim: Decimal, sigmas: int) -> int:
    """Step 2, the cap: trimmed mean + ``sigmas`` winsorized standard deviations of ``sample``
    (`_cap_of` from its sums and its extremes, found by partial sorts)."""
    n = len(sample)
    if n == 0:
        msg = "the order-size cap needs at least one order"
        raise ValueError(msg)
    k = _trimmed(n, trim)
    return _cap_of(n, k, _sums(sample), _extremes(sample, k) if k else None, sigmas)


def _trimmed(n: int, trim: Decimal) -> int:
    """k = floor(trim·n), the sizes trimmed (winsorized) at each end of a sample of ``n``."""
    num, den = trim.as_integer_ratio()
    return n * num // den


def _cap_of(
    n: int,
    k: int,
    sums: tuple[int, int],
    extremes: tuple[int, int, int, int] | None,
    sigmas: int,
) -> int:
    """The cap of a sample of ``n`` sizes with ``k`` trimmed at each end, from its exact sum and
    sum of squares and (when k > 0) `_extremes`.

    Exact: the trimmed mean and the winsorized variance (ddof 1) follow from those; each term
    is floored to 1e-8 (the deviation term as ``isqrt``, no float involved).
    """
    total, total_sq = sums
    trimmed, w_sum, w_sq = total, total, total_sq
    if extremes is not None:
        low_k, high_k, cut_sum, cut_sq = extremes
        trimmed = total - cut_sum
        w_sum = trimmed + k * (low_k + high_k)
        w_sq = total_sq - cut_sq + k * (low_k * low_k + high_k * high_k)
    cap = trimmed // (n - 2 * k)
    if n > 1:
        cap += math.isqrt(sigmas * sigmas * (n * w_sq - w_sum * w_sum) // (n * (n - 1)))
    return cap


def _extremes(sample: I64, k: int) -> tuple[int, int, int, int]:
    """x[k] and x[n-k-1] of the sorted sample, and the sum and sum of squares of its k smallest
    and k largest together (partial sorts)."""
    n = len(sample)
    low = np.partition(sample, k)  # the k smallest first, then x[k]
    high = np.partition(sample, n - k - 1)  # x[n-k-1], then the k largest
    cut_sum, cut_sq = _sums(np.concatenate([low[:k], high[n - k :]]))
    return int(low[k]), int(high[n - k - 1]), cut_sum, cut_sq


@dataclass(slots=True)
class _Tails:
    """The ends of a sample kept from tick to tick: ``low`` holds every size ≤ its last, sorted,
    ``high`` every size ≥ its first; a patch moves the few sizes that change, so the cap's
    extremes need no partial sort of the whole sample while each end holds at least k+1."""

    low: list[int]
    high: list[int]

    @classmethod
    def of(cls, sample: I64, k: int) -> _Tails:
        """The tails of ``sample`` holding about 2k + 16 sizes each (all ties included)."""
        n = len(sample)
        m = min(n - 1, 2 * k + 16)
        low_t = int(np.partition(sample, m)[m])
        high_t = int(np.partition(sample, n - 1 - m)[n - 1 - m])
        low = np.sort(sample[sample <= low_t]).tolist()
        high = np.sort(sample[sample >= high_t]).tolist()
        return cls(low, high)

    def move(self, removed: list[int], added: list[int]) -> None:
        """Sizes that left the sample and sizes that joined it."""
        low, high = self.low, self.high
        if not (low and high):
            return  # spent: `extremes` says it cannot serve
        low_t, high_t = low[-1], high[0]
        for size in removed:
            if size <= low_t:
                del low[bisect_left(low, size)]
            if size >= high_t:
                del high[bisect_left(high, size)]
        for size in added:
            if size <= low_t:
                insort(low, size)
            if size >= high_t:
                insort(high, size)

    def extremes(self, k: int) -> tuple[int, int, int, int] | None:
        """As `_extremes`, None when a tail holds fewer than k+1 sizes."""
        low, high = self.low, self.high
        if len(low) <= k or len(high) <= k:
            return None
        cut = low[:k] + high[len(high) - k :]
        return low[k], high[-k - 1], sum(cut), sum(map(mul, cut, cut))


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
    """One venue side: its level tuple and, read on demand, int64 arrays of its leading levels'
    sort keys (the ask price, or minus the bid price, so keys ascend best first) and sizes.
    ``changes`` is how the levels differ from an earlier tuple (`L2Book.view` says); ``live``
    is whether the view came from a live book (so later views will say what changed)."""

    __slots__ = ("_keys", "_sizes", "changes", "first", "key", "levels", "live")

    def __init__(
        self, levels: tuple[Level, ...], changes: SideChanges | None, live: bool, is_bid: bool
    ) -> None:
        self.levels = levels
        self.changes = changes
        self.live = live
        self.key: Callable[[Level], int] = _neg_price if is_bid else _PRICE
        self.first = self.key(levels[0])
        """The best level's key (a used venue's sides are never empty)."""
        self._keys = self._sizes = _NONE

    def count(self, limit_key: int) -> int:
        """How many leading levels have a key ≤ ``limit_key`` (a bisection: no level is read
        beyond the ones it probes)."""
        return bisect_right(self.levels, limit_key, key=self.key)

    def keys(self, n: int) -> I64:
        """The sort keys of the best ``n`` levels."""
        if len(self._keys) < n:
            keys = _ints(map(_PRICE, self.levels[:n]), n)
            self._keys = keys if self.key is _PRICE else -keys
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


@dataclass(slots=True)
class _Merged:
    """One side's leading levels of the used venues (``counts`` of each) merged best first.

    ``table`` row 0 holds composite keys ``key·2^bits + venue`` (venue index < 2^bits, so ties
    keep venue order and every (key, venue) is unique; shifts and masks decode them), row 1
    the sizes, uncapped. ``bases`` are the venues' level tuples when it holds them whole (a
    later tick can then patch it from their `SideChanges`), else None. ``sums`` is the exact
    sum and sum of squares of all its sizes once known (a patch updates it).
    """

    sides: list[_Side]
    counts: list[int]
    table: I64
    bases: list[tuple[Level, ...]] | None
    sums: tuple[int, int] | None = None
    moves: tuple[list[int], list[int]] | None = None
    """For a patched merge, the sizes that left and those that joined (`_Tails.move`)."""

    @property
    def bits(self) -> int:
        return _bits(len(self.sides))

    def count(self, limit_key: int) -> int:
        """How many merged levels have a key ≤ ``limit_key``."""
        bits = self.bits
        return int(self.table[0].searchsorted(((limit_key + 1) << bits) - 1, "right"))

    def keys(self, index: I64) -> I64:
        """The sort keys of the merged levels at ``index``."""
        out: I64 = self.table[0].take(index) >> self.bits
        return out


def _bits(venues: int) -> int:
    """Bits for a venue index in a composite key (prices within ±2^56, `MAX_PRICE_E8`, leave
    room for 6 bits in an int64)."""
    if venues > 64:
        msg = f"the replica takes at most 64 venues, got {venues}"
        raise ValueError(msg)
    return max(1, (venues - 1).bit_length())


def _merge(sides: list[_Side], counts: list[int]) -> _Merged:
    """The leading ``counts`` levels of each venue merged by one stable sort."""
    pairs = list(zip(sides, counts, strict=True))
    venue = np.repeat(np.arange(len(sides), dtype=np.int64), counts)
    keys = np.concatenate([s.keys(c) for s, c in pairs]) << _bits(len(sides)) | venue
    order = np.argsort(keys, kind="stable")
    table = np.empty((2, len(keys)), np.int64)
    keys.take(order, out=table[0])
    np.concatenate([s.sizes(c) for s, c in pairs]).take(order, out=table[1])
    whole = all(c == len(s.levels) for s, c in pairs)
    return _Merged(sides, counts, table, [s.levels for s in sides] if whole else None)


def _patched(old: _Merged, sides: list[_Side]) -> _Merged | None:
    """``old`` brought up to ``sides`` through their `SideChanges`: a few changed levels cost a
    few microseconds each instead of reading and merging every level. None when ``old`` does
    not hold every venue's previous levels whole, or a venue's levels are not a patch of them.
    """
    bases = old.bases
    if bases is None or len(bases) != len(sides):
        return None
    keys: list[int] = []
    venues: list[int] = []
    was: list[int] = []
    now: list[int] = []
    for i, (side, held) in enumerate(zip(sides, bases, strict=True)):
        if side.levels is held:
            continue
        delta = side.changes
        if delta is None or delta.base is not held:
            return None
        keys += delta.keys
        venues += [i] * len(delta.keys)
        was += delta.before
        now += delta.sizes
    new_bases = [s.levels for s in sides]
    counts = [len(s.levels) for s in sides]
    if not keys:
        return _Merged(sides, counts, old.table, new_bases, old.sums, ([], []))
    bits = _bits(len(sides))
    # (composite key, size before, size now), in table order.
    composite = [k << bits | v for k, v in zip(keys, venues, strict=True)]
    changes = sorted(zip(composite, was, now, strict=True))
    table = old.table
    # A level present before is in the table at its composite key; a new one goes there.
    pos = table[0].searchsorted(_ints([c[0] for c in changes], len(changes))).tolist()
    cuts: list[tuple[int, int]] = []
    inserted_keys: list[int] = []
    inserted_sizes: list[int] = []
    resized: list[tuple[int, int]] = []
    removed: list[int] = []
    shift = 0
    for (ck, before, size), j in zip(changes, pos, strict=True):
        if not before:
            cuts.append((j, 1))
            inserted_keys.append(ck)
            inserted_sizes.append(size)
            shift += 1
            continue
        removed.append(before)
        if size:
            resized.append((j + shift, size))
        else:
            cuts.append((j, -1))
            shift -= 1
    added = [size for size in now if size]
    new = _splice_columns(table, cuts, inserted_keys + inserted_sizes) if cuts else table.copy()
    for j, size in resized:
        new[1, j] = size
    sums = old.sums
    if sums is not None:
        sums = (
            sums[0] + sum(added) - sum(removed),
            sums[1] + sum(map(mul, added, added)) - sum(map(mul, removed, removed)),
        )
    return _Merged(sides, counts, new, new_bases, sums, (removed, added))


def _splice_columns(old: I64, cuts: list[tuple[int, int]], inserted: list[int]) -> I64:
    """A new array: the columns of the two-row ``old`` with the ``cuts`` applied: ``(i, -1)``
    drops column ``i``, ``(i, 1)`` puts the next inserted column before it (``cuts`` ascending;
    ``inserted`` holds the new columns' first row, then their second). One `np.concatenate`
    of slices: a few changes to thousands of columns cost a few microseconds."""
    new = _ints(inserted, len(inserted)).reshape(2, -1) if inserted else old
    parts = []
    start = taken = 0
    for i, op in cuts:
        parts.append(old[:, start:i])
        if op < 0:
            start = i + 1
        else:
            parts.append(new[:, taken : taken + 1])
            taken += 1
            start = i
    parts.append(old[:, start:])
    out: I64 = np.concatenate(parts, axis=1)
    return out


def _sample(merged: _Merged, limit_key: int, min_orders: int) -> tuple[I64, tuple[int, int] | None]:
    """Step 2, one side's sample and, when known, its exact sums: the sizes of every level with
    key ≤ ``limit_key`` (within the window), widened nearest first to ``min_orders`` levels,
    every level tied with the last one added included.

    Usually a leading run of the merged levels (often all of them, whose sums are kept); when
    the window holds fewer than ``min_orders`` levels, each venue's run is found apart
    (`_sample_counts`).
    """
    table = merged.table
    inside = merged.count(limit_key)
    if inside < min_orders:
        sides = merged.sides
        counts = _sample_counts(sides, limit_key, min_orders)
        return np.concatenate([s.sizes(c) for s, c in zip(sides, counts, strict=True)]), None
    sizes = table[1, :inside]
    if inside < table.shape[1]:
        return sizes, None
    if merged.sums is None:
        merged.sums = _sums(sizes)
    return sizes, merged.sums


@dataclass(slots=True)
class _Consolidated:
    """The leading ``n`` merged levels of one side as the consolidated book (best first):
    their ``capped`` sizes and the running total ``cum`` of those."""

    merged: _Merged
    n: int
    capped: I64
    cum: I64

    @property
    def volume(self) -> int:
        return int(self.cum[-1]) if self.n else 0


def _consolidate(merged: _Merged, limit_key: int | None, cap: int) -> _Consolidated:
    """Step 3, the consolidated book of one side: the merged levels with key ≤ ``limit_key``
    (all if None), each capped."""
    n = merged.table.shape[1] if limit_key is None else merged.count(limit_key)
    capped = np.minimum(merged.table[1, :n], cap)
    return _Consolidated(merged, n, capped, np.cumsum(capped))


@dataclass(slots=True)
class _Curves:
    """Step 3's price-volume curves at v = s, 2s, ...: on each side the marginal level's index
    in the consolidated book, and twice the mid and the spread of the marginal prices."""

    bid_index: I64
    ask_index: I64
    mid2: I64
    spread: I64


def _curves(bids: _Consolidated, asks: _Consolidated, steps: int, spacing: int) -> _Curves:
    """Step 3, the curves: the price reached filling v = s, 2s, ... ``steps``·s on each side
    (from the sort keys: the ask price and minus the bid price)."""
    grid = np.arange(spacing, (steps + 1) * spacing, spacing, dtype=np.int64)
    bi = bids.cum.searchsorted(grid, "left")
    ai = asks.cum.searchsorted(grid, "left")
    bid_keys, ask_keys = bids.merged.keys(bi), asks.merged.keys(ai)
    return _Curves(bi, ai, ask_keys - bid_keys, ask_keys + bid_keys)


def _utilized_depth(curves: _Curves, deviation: Decimal) -> int:
    """Step 4, the utilized depth in spacings: the steps before the first whose mid spread
    exceeds D (the mid spread never falls as v grows), at least one.

    The curves end where a side's volume within its bound (see `_core`), or in its whole
    book, ends; the next step, if any, lies beyond that bound, so beyond D.
    """
    d_n, d_d = deviation.as_integer_ratio()
    within = curves.spread * d_d <= curves.mid2 * d_n
    first_out = int(within.argmin())  # the first False, or 0 when all are True
    return len(within) if within[first_out] else max(first_out, 1)


@lru_cache(maxsize=64)
def _weights(n: int, weight_scale: Decimal) -> tuple[F64, float]:
    """Step 5's weights λe^(−λv) for v = s..n·s up to a constant factor, λ = 1/(scale·v_T), in
    spacings, and their sum (the utilized depth changes little from tick to tick)."""
    weights = np.exp(np.arange(1, n + 1) / (-float(weight_scale) * n))
    return weights, float(weights.sum())


def _value(curves: _Curves, n: int, weight_scale: Decimal, decimals: int) -> int:
    """Step 5, the value (``*_e8``): the exponentially weighted mid over the first ``n`` steps,
    rounded to ``decimals`` places exactly."""
    mid2 = curves.mid2[:n]
    weights, total = _weights(n, weight_scale)
    base = int(mid2[0])
    offset = float(np.dot(mid2 - base, weights)) / total
    num, den = offset.as_integer_ratio()  # twice the unrounded value is base + num/den (e8)
    return round_e8(base * den + num, 2 * den, decimals)


def _share(book: _Consolidated, index: int, volume: int) -> list[float]:
    """Each venue's part of the first ``volume`` of a side; a tie at the marginal price (the
    key at ``index``) is shared pro rata."""
    merged = book.merged
    table, bits, n_venues = merged.table, merged.bits, len(merged.sides)
    key = int(table[0, index]) >> bits
    start = merged.count(key - 1)
    end = merged.count(key)
    capped = book.capped
    venue = table[0, :end] & ((1 << bits) - 1)
    better = np.bincount(venue[:start], weights=capped[:start], minlength=n_venues).tolist()
    at = [0] * n_venues
    for v, size in zip(venue[start:].tolist(), capped[start:end].tolist(), strict=True):
        at[v] += size
    rest = volume - (int(book.cum[start - 1]) if start else 0)
    at_total = sum(at)
    return [b + t * rest / at_total for b, t in zip(better, at, strict=True)]


@dataclass(frozen=True, slots=True)
class _Core:
    """What the used venues' books alone determine: the value, utilized depth (in spacings),
    cap, each venue's depth share and a note (the mid-price fallback)."""

    value_e8: int
    steps: int
    cap: int
    shares: dict[str, float]
    note: str = ""


@dataclass(slots=True)
class _State:
    """What a calculation leaves for the next to patch: each side's merged levels and, while
    the cap sample is all of them, its tails."""

    bids: _Merged
    asks: _Merged
    tails: _Tails | None


def _core(
    used: list[str], pairs: list[tuple[_Side, _Side]], p: RtiParams, last: _State | None
) -> tuple[_Core, _State]:
    """Steps 2–5 over the used venues' sides; also returns the `_State` the next call patches
    (``last``) when every venue's levels are patches of these.

    Each side's venue levels are merged once: all of them when every view comes from a live
    book (`BookView.changes`), else those within both the cap window and the curves' reach.
    The cap sample and the consolidated book are leading runs of that merge. An ask above
    b1·(1 + D)/(1 − D), or a bid below a1·(1 − D)/(1 + D), is more than D from the mid with any
    level of the other side, so no step within D reaches it.
    """
    sides = ([b for b, _ in pairs], [a for _, a in pairs])
    b1 = -min(s.first for s in sides[0])
    a1 = min(s.first for s in sides[1])
    w_n, w_d = p.cap_window.as_integer_ratio()
    d_n, d_d = p.deviation.as_integer_ratio()
    windows = (-((w_d - w_n) * b1) // w_d, (w_d + w_n) * a1 // w_d)
    reaches = (-a1 * (d_d - d_n) // (d_d + d_n), b1 * (d_d + d_n) // (d_d - d_n))
    merged = []
    for i, side in enumerate(sides):
        m = None if last is None else _patched(last.asks if i else last.bids, side)
        if m is None:
            whole = all(s.live for s in side)
            limit = max(windows[i], reaches[i])
            m = _merge(side, [len(s.levels) if whole else s.count(limit) for s in side])
        merged.append(m)
    bid_m, ask_m = merged
    (bid_sample, bid_sums), (ask_sample, ask_sums) = (
        _sample(m, window, p.cap_min_orders) for m, window in zip(merged, windows, strict=True)
    )
    n = len(bid_sample) + len(ask_sample)
    k = _trimmed(n, p.cap_trim)
    tails = extremes = None
    if bid_sums is not None and ask_sums is not None:
        # Both samples are all the merged levels: their sums are kept, and so are the tails.
        sums = (bid_sums[0] + ask_sums[0], bid_sums[1] + ask_sums[1])
        if last is not None and last.tails is not None and bid_m.moves and ask_m.moves:
            tails = last.tails
            tails.move(bid_m.moves[0] + ask_m.moves[0], bid_m.moves[1] + ask_m.moves[1])
            extremes = tails.extremes(k) if k else None
        if k and extremes is None:
            tails = _Tails.of(np.concatenate((bid_sample, ask_sample)), k)
            extremes = tails.extremes(k)
    else:
        sample = np.concatenate((bid_sample, ask_sample))
        sums = _sums(sample)
        extremes = _extremes(sample, k) if k else None
    cap = _cap_of(n, k, sums, extremes, p.cap_sigmas)
    state = _State(bid_m, ask_m, tails)

    s = p.spacing_e8
    bids, asks = (_consolidate(m, r, cap) for m, r in zip(merged, reaches, strict=True))
    if min(bids.volume, asks.volume) < s:
        # The first step lies beyond the bound on a side (the curves use it whatever its mid
        # spread) or a side is thin: use the whole books.
        bids, asks = (
            _consolidate(
                m
                if m.counts == [len(x.levels) for x in side]
                else _merge(side, [len(x.levels) for x in side]),
                None,
                cap,
            )
            for m, side in zip(merged, sides, strict=True)
        )
    grid_n = min(bids.volume, asks.volume) // s
    if grid_n == 0:
        note = "mid-price fallback: a side holds less than one spacing of volume"
        core = _Core(round_e8(b1 + a1, 2, p.decimals), 0, cap, dict.fromkeys(used, 0.0), note)
        return core, state

    curves = _curves(bids, asks, grid_n, s)
    steps = _utilized_depth(curves, p.deviation)
    value_e8 = _value(curves, steps, p.weight_scale, p.decimals)
    volume = steps * s
    bid_shares = _share(bids, int(curves.bid_index[steps - 1]), volume)
    ask_shares = _share(asks, int(curves.ask_index[steps - 1]), volume)
    scale = 2 * 10**SPOT_DIGITS
    shares = {v: (b + a) / scale for v, b, a in zip(used, bid_shares, ask_shares, strict=True)}
    return _Core(value_e8, steps, cap, shares), state


class RtiCalculator:
    """Computes one RTI from venue books, carrying the potentially-erroneous state between calls.

    A venue's sides are kept while its book's level tuples stay the same objects, and the
    whole calculation proper (steps 2–5) while every used venue's do, so quiet venues cost
    little. Each side's merged levels (and the cap sample's sums and tails) are kept too and
    patched from the next views' `SideChanges` (`L2Book.view` gives them), so a tick where
    every book changed by a few levels handles only those.
    """

    def __init__(self, params: RtiParams = PARAMS["BRTI"]) -> None:
        self.params = params
        self._ped_out: set[str] = set()
        self._sides_cache: dict[str, tuple[_Side, _Side]] = {}
        self._last: tuple[list[tuple[str, tuple[Level, ...], tuple[Level, ...]]], _Core] | None
        self._last = None
        self._state: _State | None = None
        self._quantum = Decimal(1).scaleb(-params.decimals)
        self._tops: dict[str, tuple[tuple[int, int], Decimal, Decimal]] = {}
        """venue -> (best bid, best ask) and the mid and spread made of them."""

    @property
    def potentially_erroneous(self) -> frozenset[str]:
        """Venues currently held out as potentially erroneous."""
        return frozenset(self._ped_out)

    def _sides(self, book: BookView) -> tuple[_Side, _Side]:
        """The venue's sides, each kept while the view holds the same level tuple."""
        cached = self._sides_cache.get(book.venue)
        changes = book.changes
        live = changes is not None
        if cached is not None and cached[0].levels is book.bids:
            bids = cached[0]
        else:
            bids = _Side(book.bids, None if changes is None else changes.bids, live, is_bid=True)
        if cached is not None and cached[1].levels is book.asks:
            asks = cached[1]
        else:
            asks = _Side(book.asks, None if changes is None else changes.asks, live, is_bid=False)
        sides = self._sides_cache[book.venue] = (bids, asks)
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
        pairs = [self._sides(b) for b in books]
        state, self._state = self._state, None  # `_core` moves its tails: dropped if it fails
        core, self._state = _core([b.venue for b in books], pairs, self.params, state)
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
        lag = p.lag_threshold_ns
        for name, book in views.items():
            reason = screen(book, now_ns, lag)
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
        tops = self._tops
        for name in sorted(views):
            book = views[name]
            mid = spread = None
            if book.bids and book.asks:
                top = (book.bids[0][0], book.asks[0][0])
                held = tops.get(name)
                if held is None or held[0] != top:
                    bb, ba = top
                    mid = to_decimal(bb + ba, SPOT_DIGITS) / 2
                    held = tops[name] = (top, mid, to_decimal(ba - bb, SPOT_DIGITS))
                _, mid, spread = held
            reason = excluded.get(name, "")
            details.append(
                VenueDetail(
                    name,
                    EXCLUDED if reason else USED,
                    reason,
                    mid,
                    spread,
                    None if shares is None else shares.get(name),
                    (now_ns - book.updated_ns) / 1e9,
                    len(book.bids),
                    len(book.asks),
                )
            )
        return RtiResult(
            index_id=self.params.index_id,
            now_ns=now_ns,
            value_e8=value_e8,
            value=None
            if value_e8 is None
            else to_decimal(value_e8, SPOT_DIGITS).quantize(self._quantum),
            utilized_depth=None if steps is None else steps * self.params.spacing,
            cap=None if cap is None else to_decimal(cap, SPOT_DIGITS),
            venues_used=tuple(used),
            excluded={k: excluded[k] for k in sorted(excluded)},
            venues=tuple(details),
            note=note,
        )
