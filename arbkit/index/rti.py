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
book, the curves and every threshold test. Only the exponential weights and the cap's standard
deviation are floating point (they are irrational anyway); the weighted average is taken over
offsets from the first mid, so float error stays far below 1e-8 USD, and the final rounding is
exact integer arithmetic.

Speed: numpy over per-venue arrays. Turning a venue's level tuples into arrays (plus its sorted
sizes and exact sums for the cap) is the largest cost, so the calculator keeps them per venue
until the venue's level tuples change (identity check); a book source that hands out the same
tuples while a book is unchanged gets those venues for free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
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


@dataclass(frozen=True, slots=True)
class _Sizes:
    """A bag of level sizes with what the cap needs from it: the sizes in ascending order and
    their exact sum and sum of squares (Python ints: squares of ``*_e8`` sizes overflow int64).
    A venue side's full bag is computed once per book and reused until the book changes."""

    ascending: I64
    total: int
    total_sq: int


_SPLIT = 24
_SPLIT_MASK = (1 << _SPLIT) - 1


def _sizes(sizes: I64) -> _Sizes:
    if len(sizes) < 1 << 14 and (not len(sizes) or int(sizes.max()) < 1 << 40):
        # Exact in int64: with x = h·2^24 + l (h < 2^16, l < 2^24, n < 2^14) no partial sum
        # overflows, and x² = h²·2^48 + 2hl·2^24 + l².
        high = sizes >> _SPLIT
        low = sizes & _SPLIT_MASK
        total_sq = (int(high @ high) << 2 * _SPLIT) + (int(high @ low) << _SPLIT + 1)
        return _Sizes(np.sort(sizes), int(sizes.sum()), total_sq + int(low @ low))
    values = sizes.tolist()
    return _Sizes(np.sort(sizes), sum(values), sum(map(mul, values, values)))


def _extremes(bags: list[_Sizes], count: int, largest: bool) -> I64:
    """The ``count`` smallest (or largest) sizes over all bags, most extreme first."""
    if largest:
        pool = np.concatenate([b.ascending[-count:] for b in bags])
        return np.sort(np.partition(pool, len(pool) - count)[-count:])[::-1]
    pool = np.concatenate([b.ascending[:count] for b in bags])
    return np.sort(np.partition(pool, count - 1)[:count])


def _cap(bags: list[_Sizes], trim: Decimal, sigmas: int) -> int:
    """Trimmed mean + ``sigmas`` winsorized standard deviations of the sizes in ``bags``.

    Exact: with ``k = floor(trim·n)``, the trimmed mean and the winsorized variance (ddof 1)
    follow from the bags' sums and sums of squares and the k+1 most extreme sizes at each end;
    each term is floored to 1e-8 (the deviation term as ``isqrt``, no float involved).
    """
    n = sum(len(b.ascending) for b in bags)
    if n == 0:
        msg = "the order-size cap needs at least one order"
        raise ValueError(msg)
    num, den = trim.as_integer_ratio()
    k = n * num // den
    total = sum(b.total for b in bags)
    total_sq = sum(b.total_sq for b in bags)
    low = _extremes(bags, k + 1, largest=False)
    high = _extremes(bags, k + 1, largest=True)
    low_k, high_k = int(low[k]), int(high[k])  # x[k] and x[n-k-1] of the sorted sample
    cut = np.concatenate([low[:k], high[:k]])
    trimmed: int = total - sum(cut.tolist())
    cap = trimmed // (n - 2 * k)
    if n > 1:
        w_sum = trimmed + k * (low_k + high_k)
        w_sq = total_sq - _sizes(cut).total_sq + k * (low_k * low_k + high_k * high_k)
        cap += math.isqrt(sigmas * sigmas * (n * w_sq - w_sum * w_sum) // (n * (n - 1)))
    return cap


def order_size_cap(sample: I64, trim: Decimal, sigmas: int) -> int:
    """The dynamic order-size cap (``*_e8``) of a sample of level sizes (``*_e8``).

    Trimmed mean of the sizes without the lowest and highest ``floor(trim·n)``, plus ``sigmas``
    sample standard deviations (ddof 1) of the sample winsorized at the same ranks; each term
    floored to 1e-8. A one-element sample has no deviation term.
    """
    return _cap([_sizes(sample)], trim, sigmas)


@dataclass(slots=True)
class _Side:
    """One venue side as arrays: ascending sort keys (ask price, or minus the bid price),
    sizes, and the side's size bag for the cap."""

    levels: tuple[Level, ...]
    keys: I64
    sizes: I64
    bag: _Sizes


def _side(levels: tuple[Level, ...], is_bid: bool) -> _Side:
    n = len(levels)
    prices = np.fromiter(map(_PRICE, levels), np.int64, n)
    sizes = np.fromiter(map(_SIZE, levels), np.int64, n)
    return _Side(levels, -prices if is_bid else prices, sizes, _sizes(sizes))


def _cap_sample(sides: list[_Side], limit_key: int, min_orders: int) -> list[_Sizes]:
    """Size bags of the levels with key ≤ ``limit_key``, widened nearest-first to
    ``min_orders`` (a side entirely inside the window reuses its cached bag)."""
    counts = [int(np.searchsorted(s.keys, limit_key, side="right")) for s in sides]
    bags = [
        s.bag if c == len(s.sizes) else _sizes(s.sizes[:c])
        for s, c in zip(sides, counts, strict=True)
        if c
    ]
    need = min_orders - sum(counts)
    if need > 0:
        rest_keys = np.concatenate([s.keys[c:] for s, c in zip(sides, counts, strict=True)])
        rest_sizes = np.concatenate([s.sizes[c:] for s, c in zip(sides, counts, strict=True)])
        if len(rest_keys) > need:
            kth = np.partition(rest_keys, need - 1)[need - 1]
            rest_sizes = rest_sizes[rest_keys <= kth]
        if len(rest_sizes):
            bags.append(_sizes(rest_sizes))
    return bags


@dataclass(slots=True)
class _Consolidated:
    """One side of the consolidated, capped book sorted best first."""

    keys: I64
    sizes: I64
    venue: I64
    cum: I64


def _consolidate(sides: list[_Side], cap: int) -> _Consolidated:
    keys = np.concatenate([s.keys for s in sides])
    order = np.argsort(keys, kind="stable")
    sizes = np.minimum(np.concatenate([s.sizes for s in sides]), cap)[order]
    venue = np.repeat(np.arange(len(sides)), [len(s.keys) for s in sides])[order]
    return _Consolidated(keys[order], sizes, venue, np.cumsum(sizes))


def _volume_through(book: _Consolidated, limit_key: int) -> int:
    """Capped volume of the levels with key ≤ ``limit_key``."""
    i = int(np.searchsorted(book.keys, limit_key, side="right"))
    return int(book.cum[i - 1]) if i else 0


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


class RtiCalculator:
    """Computes one RTI from venue books, carrying the potentially-erroneous state between calls.

    Per-venue arrays are cached by the identity of each book's level tuples, so a venue whose
    book did not change since the previous call costs almost nothing.
    """

    def __init__(self, params: RtiParams = PARAMS["BRTI"]) -> None:
        self.params = params
        self._ped_out: set[str] = set()
        self._cache: dict[str, tuple[_Side, _Side]] = {}

    @property
    def potentially_erroneous(self) -> frozenset[str]:
        """Venues currently held out as potentially erroneous."""
        return frozenset(self._ped_out)

    def _sides(self, book: BookView) -> tuple[_Side, _Side]:
        cached = self._cache.get(book.venue)
        if cached is not None and cached[0].levels is book.bids and cached[1].levels is book.asks:
            return cached
        sides = (_side(book.bids, is_bid=True), _side(book.asks, is_bid=False))
        self._cache[book.venue] = sides
        return sides

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

        pairs = [self._sides(views[v]) for v in used]
        bid_sides = [b for b, _ in pairs]
        ask_sides = [a for _, a in pairs]
        b1 = -min(int(s.keys[0]) for s in bid_sides)
        a1 = min(int(s.keys[0]) for s in ask_sides)

        w_n, w_d = p.cap_window.as_integer_ratio()
        bags = _cap_sample(bid_sides, -((w_d - w_n) * b1) // w_d, p.cap_min_orders)
        bags += _cap_sample(ask_sides, (w_d + w_n) * a1 // w_d, p.cap_min_orders)
        cap = _cap(bags, p.cap_trim, p.cap_sigmas)
        bids = _consolidate(bid_sides, cap)
        asks = _consolidate(ask_sides, cap)

        s = p.spacing_e8
        depth = min(int(bids.cum[-1]), int(asks.cum[-1])) // s
        if depth == 0:
            value_e8 = round_e8(b1 + a1, 2, p.decimals)
            note = "mid-price fallback: a side holds less than one spacing of volume"
            shares = dict.fromkeys(used, 0.0)
            return self._result(views, now_ns, excluded, used, value_e8, 0, cap, shares, note)

        # No v beyond these volumes can have a mid spread within D: with ask ≤ b1 and bid ≥ a1
        # out of reach, (ask − bid)/(ask + bid) > D whatever the other side.
        d_n, d_d = p.deviation.as_integer_ratio()
        ask_reach = _volume_through(asks, b1 * (d_d + d_n) // (d_d - d_n))
        bid_reach = _volume_through(bids, -a1 * (d_d - d_n) // (d_d + d_n))
        grid_n = min(depth, min(ask_reach, bid_reach) // s + 1)
        grid = np.arange(1, grid_n + 1, dtype=np.int64) * s
        bi = np.searchsorted(bids.cum, grid, side="left")
        ai = np.searchsorted(asks.cum, grid, side="left")
        bid_pv = -bids.keys[bi]
        ask_pv = asks.keys[ai]
        within = (ask_pv - bid_pv) * d_d <= d_n * (ask_pv + bid_pv)
        n = grid_n if bool(within.all()) else max(int(np.argmin(within)), 1)

        mid2 = ask_pv[:n] + bid_pv[:n]
        weights = np.exp(np.arange(1, n + 1) / (-float(p.weight_scale) * n))
        base = int(mid2[0])
        offset = float(np.dot((mid2 - base).astype(np.float64), weights) / weights.sum())
        exact = Fraction(base) + Fraction(offset)  # twice the unrounded value, in e8
        value_e8 = round_e8(exact.numerator, 2 * exact.denominator, p.decimals)

        volume = n * s
        per_venue = (
            _share(bids, int(bi[n - 1]), volume, len(used))
            + _share(asks, int(ai[n - 1]), volume, len(used))
        ) / (2 * 10**SPOT_DIGITS)
        shares = {v: float(x) for v, x in zip(used, per_venue, strict=True)}
        return self._result(views, now_ns, excluded, used, value_e8, n, cap, shares)

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
