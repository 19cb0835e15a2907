"""The BRTI replica: the reference's worked example, an independent slow implementation, and the
data-quality rules (stale, crossed, one-sided, invalid, potentially erroneous with re-entry)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbkit.core.book import BookView, L2Book, Level
from arbkit.index.params import PARAMS, RtiParams
from arbkit.index.rti import RtiCalculator, RtiResult, _extremes, _Tails, order_size_cap

E8 = 10**8
BTC = PARAMS["BRTI"]
NOW = 1_800_000_000 * 10**9


def lv(*levels: tuple[str, str]) -> tuple[Level, ...]:
    return tuple((int(Decimal(p) * E8), int(Decimal(s) * E8)) for p, s in levels)


# Reference §1.7: the capped consolidated book.
WORKED_BIDS = lv(
    ("99990", "0.6"), ("99985", "1.4"), ("99980", "2.0"),
    ("99970", "3.0"), ("99950", "5.0"), ("99500", "10"),
)  # fmt: skip
WORKED_ASKS = lv(
    ("100010", "0.5"), ("100015", "1.0"), ("100020", "2.5"),
    ("100040", "3.0"), ("100060", "5.0"), ("100600", "10"),
)  # fmt: skip


def book(
    venue: str,
    bids: tuple[Level, ...],
    asks: tuple[Level, ...],
    *,
    age_s: float = 0.0,
    valid: bool = True,
) -> BookView:
    return BookView(venue, bids, asks, NOW - int(age_s * 1e9), valid)


def simple(venue: str, mid: str, *, half: str = "5", size: str = "2", depth: int = 20) -> BookView:
    """A book around ``mid`` with ``depth`` levels a dollar apart on each side."""
    m = Decimal(mid)
    h = Decimal(half)
    return book(
        venue,
        lv(*[(str(m - h - i), size) for i in range(depth)]),
        lv(*[(str(m + h + i), size) for i in range(depth)]),
    )


def calc(*books: BookView, params: RtiParams = BTC) -> RtiResult:
    return RtiCalculator(params).calculate(books, NOW)


# -- the worked example ------------------------------------------------------------------------


def test_worked_example_gives_100002_00() -> None:
    r = calc(book("coinbase", WORKED_BIDS, WORKED_ASKS))
    assert r.value == Decimal("100002.00")
    assert r.value_e8 == 100002 * E8
    assert r.utilized_depth == 12
    assert r.cap is not None
    assert r.cap > 10  # the cap does not bind: the book is already the capped one
    assert r.venues_used == ("coinbase",)
    assert r.excluded == {}
    assert r.venues[0].depth_used == pytest.approx(12.0)


def test_worked_example_split_over_venues_is_the_same_book() -> None:
    """Levels spread over three venues (one price on two venues) consolidate to §1.7's book."""
    bids, asks = list(WORKED_BIDS), list(WORKED_ASKS)
    a = book("a", (bids[0], (bids[1][0], bids[1][1] - E8 // 2), bids[4]), (asks[0], asks[3]))
    b = book("b", ((bids[1][0], E8 // 2), bids[2], bids[5]), (asks[1], asks[4], asks[5]))
    c = book("c", (bids[3],), (asks[2],))
    r = calc(a, b, c)
    assert r.value == Decimal("100002.00")
    assert r.utilized_depth == 12
    assert r.cap is not None
    assert r.cap > 10
    shares = [v.depth_used for v in r.venues]
    assert sum(s or 0 for s in shares) == pytest.approx(12.0)


def test_worked_example_weights() -> None:
    """§1.7's normalised weights for v_T = 12 (λ = 1/3.6)."""
    w = np.exp(-np.arange(1, 13) / 3.6)
    w /= w.sum()
    expected = [.2515, .1905, .1443, .1093, .0828, .0627,
                .0475, .0360, .0273, .0206, .0156, .0118]  # fmt: skip
    assert w.round(4).tolist() == expected


# -- an independent, slow implementation ---------------------------------------------------------


def slow_cap(books: list[BookView], params: RtiParams) -> int:
    """The cap straight from the reference's wording, with exact fractions."""
    b1 = max(b.bids[0][0] for b in books)
    a1 = min(b.asks[0][0] for b in books)
    window = Fraction(params.cap_window)
    sample: list[int] = []
    sides: list[tuple[list[Level], Callable[[int], bool], Callable[[int], int]]] = [
        ([lvl for b in books for lvl in b.bids], lambda p: p >= (1 - window) * b1, lambda p: -p),
        ([lvl for b in books for lvl in b.asks], lambda p: p <= (1 + window) * a1, lambda p: p),
    ]
    for levels, inside, nearness in sides:
        chosen = [s for p, s in levels if inside(p)]
        rest = sorted((lvl for lvl in levels if not inside(lvl[0])), key=lambda x: nearness(x[0]))
        if len(chosen) < params.cap_min_orders and rest:
            need = params.cap_min_orders - len(chosen)
            last = nearness(rest[min(need, len(rest)) - 1][0])
            chosen += [s for p, s in rest if nearness(p) <= last]
        sample += chosen
    x = sorted(sample)
    n = len(x)
    k = math.floor(Fraction(params.cap_trim) * n)
    mean = Fraction(sum(x[k : n - k]), n - 2 * k)
    w = [x[k]] * k + x[k : n - k] + [x[n - k - 1]] * k
    wm = Fraction(sum(w), n)
    deviations = [Fraction(v) - wm for v in w]
    var = sum((d * d for d in deviations), Fraction(0)) / (n - 1) if n > 1 else Fraction(0)
    with localcontext() as ctx:
        ctx.prec = 60
        sigma = (Decimal(var.numerator) / Decimal(var.denominator)).sqrt()
        return math.floor(mean) + math.floor(params.cap_sigmas * sigma)


def slow_value(books: list[BookView], cap: int, params: RtiParams) -> tuple[Decimal, int]:
    """Value and utilized depth (in spacings) from the consolidated capped book."""
    consolidated = []
    for side in ("bids", "asks"):
        levels: dict[int, int] = {}
        for b in books:
            for p, s in getattr(b, side):
                levels[p] = levels.get(p, 0) + min(s, cap)
        consolidated.append(sorted(levels.items(), reverse=side == "bids"))
    bids, asks = consolidated
    s = params.spacing_e8

    def marginal(levels: list[tuple[int, int]], v: int) -> int | None:
        total = 0
        for p, size in levels:
            total += size
            if total >= v:
                return p
        return None

    mids: list[Fraction] = []
    j = 1
    while True:
        bid, ask = marginal(bids, j * s), marginal(asks, j * s)
        if bid is None or ask is None:
            break
        if Fraction(ask - bid, ask + bid) > Fraction(params.deviation) and mids:
            break
        mids.append(Fraction(ask + bid, 2))
        if Fraction(ask - bid, ask + bid) > Fraction(params.deviation):
            break
        j += 1
    with localcontext() as ctx:
        ctx.prec = 50
        if not mids:
            raw = Decimal(bids[0][0] + asks[0][0]) / 2
        else:
            n = len(mids)
            r = (Decimal(-1) / (params.weight_scale * n)).exp()
            weights = [r**i for i in range(1, n + 1)]
            # Weighted over offsets from the first mid: a one-step or flat curve then gives its
            # mid exactly (a 50-digit quotient of the mids themselves can land a hair below an
            # exact half cent and round the wrong way).
            first = mids[0]
            terms = zip(mids, weights, strict=True)
            num = sum(
                (Decimal((m - first).numerator) / (m - first).denominator * w for m, w in terms),
                Decimal(0),
            )
            raw = Decimal(first.numerator) / first.denominator + num / sum(weights, Decimal(0))
        value = (raw / E8).quantize(Decimal(1).scaleb(-params.decimals), ROUND_HALF_UP)
    return value, len(mids)


@st.composite
def venue_books(draw: st.DrawFn) -> list[BookView]:
    """1-5 healthy venues within 0.4 % of $100,000, 1-60 levels a side."""
    books = []
    for i in range(draw(st.integers(1, 5))):
        mid = 100_000 * E8 + draw(st.integers(-400, 400)) * E8
        half = draw(st.integers(1, 2000)) * 10**6 // 2
        sides = []
        for sign in (-1, 1):
            price = mid + sign * half
            levels = []
            for _ in range(draw(st.integers(1, 60))):
                levels.append((price, draw(st.integers(1, 300)) * E8 // 100))
                # Mostly cents to dollars apart; now and then a jump of $1,000-$10,000 so that
                # some books reach past the cap window and the 50-order widening kicks in.
                step = draw(st.one_of(st.integers(1, 4000), st.integers(100_000, 1_000_000)))
                price += sign * step * 10**6
            sides.append(tuple(levels))
        books.append(book(f"v{i}", sides[0], sides[1]))
    return books


def assert_matches_slow(books: list[BookView]) -> None:
    """Cap, value, utilized depth and depth shares as the slow implementation has them."""
    r = calc(*books)
    assert r.cap is not None
    cap = int(r.cap * E8)
    assert cap == slow_cap(books, BTC)
    value, steps = slow_value(books, cap, BTC)
    assert r.value == value
    if steps:
        assert r.utilized_depth == max(steps, 1)
        assert sum(v.depth_used or 0 for v in r.venues) == pytest.approx(steps)
    else:
        assert r.utilized_depth == 0
        assert "mid-price fallback" in r.note


@settings(max_examples=50, deadline=None)
@given(venue_books())
def test_matches_a_slow_exact_implementation(books: list[BookView]) -> None:
    assert_matches_slow(books)


def test_levels_the_curves_reach_outside_the_cap_window() -> None:
    """Venues 4 % apart (inside PED): the curves may reach asks up to b1·(1 + D)/(1 − D), here
    beyond the cap window 1.05·a1. Levels are read only up to such bounds: the big asks between
    the two must stay out of the cap, and the curves must still see them."""
    low = simple("low", "100000", depth=20)
    high_asks = lv(*[(str(104010 + 25 * i), "1000" if i > 40 else "2") for i in range(50)])
    high_bids = lv(*[(str(103990 - 25 * i), "2") for i in range(50)])
    books = [low, book("high", high_bids, high_asks)]
    r = calc(*books)
    assert r.venues_used == ("high", "low")
    assert r.cap is not None
    assert r.cap < 1000
    assert_matches_slow(books)


@settings(max_examples=25, deadline=None)
@given(venue_books(), st.randoms(use_true_random=False))
def test_venue_order_does_not_matter(books: list[BookView], rnd: object) -> None:
    shuffled = list(books)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a, b = calc(*books), calc(*shuffled)
    assert (a.value_e8, a.utilized_depth, a.cap, a.venues_used) == (
        b.value_e8,
        b.utilized_depth,
        b.cap,
        b.venues_used,
    )
    assert a.venues == b.venues


def test_other_index_parameters_are_used() -> None:
    """ETH: spacing 25, D 1 %: 30 ETH a side in one level -> one step of 25 ETH."""
    eth = PARAMS["ETHUSD_RTI"]
    r = calc(book("x", lv(("3000", "30")), lv(("3001", "30"))), params=eth)
    assert r.index_id == "ETHUSD_RTI"
    assert r.utilized_depth == 25
    assert r.value == Decimal("3000.50")
    assert list(PARAMS) == ["BRTI", "ETHUSD_RTI", "SOLUSD_RTI", "XRPUSD_RTI"]
    assert PARAMS["XRPUSD_RTI"].ped == Decimal("0.10")
    assert PARAMS["XRPUSD_RTI"].ped_reentry == Decimal("0.05")
    assert PARAMS["BRTI"].deviation == Decimal("0.005")


# -- the order-size cap --------------------------------------------------------------------------


def test_cap_formula_on_a_known_sample() -> None:
    """100 sizes 1..100 BTC: k = 1, trimmed mean 50.5, winsorized std over 2..99 plus ends."""
    sample = np.arange(1, 101, dtype=np.int64) * E8
    w = [2, *list(range(2, 100)), 99]
    mean = sum(w) / 100
    sigma = math.sqrt(sum((x - mean) ** 2 for x in w) / 99)
    assert order_size_cap(sample, Decimal("0.01"), 5) == pytest.approx(
        int(50.5 * E8) + int(5 * sigma * E8), abs=2
    )


def test_a_huge_order_is_capped() -> None:
    """A 10,000 BTC bid among 2 BTC levels is trimmed from the cap sample and enters at the cap.

    Uncapped it would hold the bid curve at the best bid for the whole depth and lift the value;
    capped (at exactly 2 BTC here) the result is the one without the whale.
    """
    normal = [simple(f"v{i}", "100000", depth=30) for i in range(4)]
    whale_bids = ((normal[0].bids[0][0], 10_000 * E8), *normal[0].bids[1:])
    r = calc(book("v0", whale_bids, normal[0].asks), *normal[1:])
    assert r.cap == 2
    plain = calc(*normal)
    assert (r.value, r.utilized_depth) == (plain.value, plain.utilized_depth)
    assert [v.depth_used for v in r.venues] == [v.depth_used for v in plain.venues]
    # 80 levels: nothing trimmed (k = 0), so a 3 BTC level raises the cap to 2 + 5σ ≈ 2.57.
    small = [simple(f"v{i}", "100000", depth=10) for i in range(4)]
    bigger = ((small[0].bids[0][0], 3 * E8), *small[0].bids[1:])
    r3 = calc(book("v0", bigger, small[0].asks), *small[1:])
    sizes = [3.0] + [2.0] * 79
    sigma = float(np.std(sizes, ddof=1))
    assert r3.cap == Decimal(int(np.mean(sizes) * E8) + int(5 * sigma * E8)).scaleb(-8)


def test_cap_sample_widens_to_50_orders_nearest_first() -> None:
    """Only 2 levels a side within 5 %: the nearest 48 beyond join the sample, the rest not."""
    inside = [("99000", "1"), ("98000", "1")]
    beyond = [(str(90000 - i), "1") for i in range(48)] + [
        (str(50000 - i), "1000") for i in range(5)
    ]
    asks_in = [("101000", "1"), ("102000", "1")]
    asks_out = [(str(110000 + i), "1") for i in range(48)] + [
        (str(200000 + i), "1000") for i in range(5)
    ]
    r = calc(book("x", lv(*inside, *beyond), lv(*asks_in, *asks_out)))
    # 100 one-BTC orders (the 1000 BTC ones are never reached): mean 1, deviation 0.
    assert r.cap == 1


# -- data quality --------------------------------------------------------------------------------


def test_stale_venue_drops_out_strictly_after_the_lag_threshold() -> None:
    fresh = [simple(f"v{i}", "100000") for i in range(3)]
    at_limit = book("old", fresh[0].bids, fresh[0].asks, age_s=10)
    assert "old" in calc(*fresh, at_limit).venues_used
    stale = book("old", fresh[0].bids, fresh[0].asks, age_s=10.5)
    r = calc(*fresh, stale)
    assert "old" not in r.venues_used
    assert r.excluded["old"].startswith("stale: 10.5 s old")


@pytest.mark.parametrize(
    ("bids", "asks", "valid", "reason"),
    [
        ((), (), True, "empty book"),
        (lv(("100", "1")), (), True, "one-sided: no asks"),
        ((), lv(("100", "1")), True, "one-sided: no bids"),
        (lv(("101", "1")), lv(("100", "1")), True, "crossed: best bid 101 >= best ask 100"),
        (lv(("100", "1")), lv(("100", "1")), True, "crossed: best bid 100 >= best ask 100"),
        (lv(("99", "1")), lv(("100", "1")), False, "invalid: the feed does not vouch"),
    ],
)
def test_erroneous_books_are_excluded(
    bids: tuple[Level, ...], asks: tuple[Level, ...], valid: bool, reason: str
) -> None:
    good = simple("good", "100")
    r = calc(good, book("bad", bids, asks, valid=valid))
    assert r.venues_used == ("good",)
    assert r.excluded["bad"].startswith(reason)
    assert r.value == calc(good).value
    only_bad = calc(book("bad", bids, asks, valid=valid))
    assert only_bad.value is None
    assert only_bad.value_e8 is None
    assert only_bad.note == "no valid venue: all 1 venues excluded"


def test_no_venue_gives_no_value_and_says_why() -> None:
    r = calc()
    assert r.value_e8 is None
    assert r.utilized_depth is None
    assert r.cap is None
    assert r.note == "no venue books given"


def test_duplicate_venue_is_refused() -> None:
    with pytest.raises(ValueError, match="two books for venue 'a'"):
        calc(simple("a", "100"), simple("a", "101"))


def test_mid_price_fallback_rounds_half_up() -> None:
    """Less than one spacing on a side: the consolidated mid, 100000.005 -> 100000.01."""
    r = calc(book("x", lv(("100000.00", "0.4")), lv(("100000.01", "0.3"))))
    assert r.value == Decimal("100000.01")
    assert r.utilized_depth == 0
    assert r.note.startswith("mid-price fallback")


def test_rounding_of_a_single_step_is_half_up() -> None:
    """v_T = s (spread beyond D at once): the value is midPV(s) rounded half up."""
    r = calc(book("x", lv(("99000.00", "1")), lv(("101000.01", "1"))))
    assert r.utilized_depth == 1
    assert r.value == Decimal("100000.01")  # 100000.005


# -- potentially erroneous data ------------------------------------------------------------------


def at(venue: str, mid: Decimal) -> BookView:
    return simple(venue, str(mid))


def test_venue_10_percent_off_is_excluded_until_back_within_2_5_percent() -> None:
    c = RtiCalculator()
    healthy = [at(f"v{i}", Decimal(100000)) for i in range(4)]

    def step(off: str) -> RtiResult:
        return c.calculate([*healthy, at("odd", Decimal(off))], NOW)

    r = step("110000")
    assert "odd" in r.excluded
    assert r.excluded["odd"].startswith("potentially erroneous: mid 10.00%")
    assert r.value == calc(*healthy).value
    assert c.potentially_erroneous == {"odd"}
    for off in ("103000", "102600", "97450"):  # within PED now, but not within 2.5 %
        assert "odd" in step(off).excluded, off
    r = step("102400")
    assert "odd" in r.venues_used
    assert "odd" not in r.excluded
    assert c.potentially_erroneous == frozenset()
    # A fresh calculator admits 3 % (inside PED); this one, re-admitted, does too.
    assert "odd" in calc(*healthy, at("odd", Decimal(103000))).venues_used
    assert "odd" in step("103000").venues_used
    assert "odd" in step("105000").venues_used  # exactly 5 % is not "more than" PED


def test_state_survives_a_stale_spell() -> None:
    c = RtiCalculator()
    healthy = [at(f"v{i}", Decimal(100000)) for i in range(3)]
    c.calculate([*healthy, at("odd", Decimal(90000))], NOW)
    near = at("odd", Decimal(100000))
    stale = BookView("odd", near.bids, near.asks, NOW - 60 * 10**9)
    assert c.calculate([*healthy, stale], NOW).excluded["odd"].startswith("stale")
    r = c.calculate([*healthy, at("odd", Decimal(103000))], NOW)
    assert r.excluded["odd"].startswith("potentially erroneous: mid still 3.00%")


def test_median_is_of_the_other_venues() -> None:
    """Leave-one-out: with the all-venue median the 6 % venue would be judged against itself."""
    books = [at("a", Decimal(100000)), at("b", Decimal(106000)), at("c", Decimal(106000))]
    r = calc(*books)
    # a: median of b, c = 106000 -> 5.66 % off; b: median of a, c = 103000 -> 2.9 %.
    assert list(r.excluded) == ["a"]
    assert r.venues_used == ("b", "c")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-1200, 1200), min_size=1, max_size=12))
def test_hysteresis_matches_the_rule(offsets_bp: list[int]) -> None:
    """One venue moving by basis points against four at 100,000: out above 5 %, back below 2.5 %."""
    c = RtiCalculator()
    healthy = [at(f"v{i}", Decimal(100000)) for i in range(4)]
    out = False
    for bp in offsets_bp:
        r = c.calculate([*healthy, at("odd", Decimal(100000) * (1 + Decimal(bp) / 10000))], NOW)
        dev = abs(bp)
        out = dev >= 250 if out else dev > 500
        assert ("odd" in r.excluded) is out, (bp, r.excluded)
        assert len(r.venues_used) == (4 if out else 5)


def test_unchanged_books_reuse_cached_arrays_and_changed_ones_do_not() -> None:
    c = RtiCalculator()
    a, b = simple("a", "100000"), simple("b", "100000")
    first = c.calculate([a, b], NOW)
    assert c.calculate([a, b], NOW) == first
    moved = simple("b", "100010")
    assert c.calculate([a, moved], NOW).value != first.value
    # Equal books in new tuples give the same result; the same tuples with a venue fewer used
    # (invalid now) are calculated afresh, and so is the full set again.
    copy = book("b", (*moved.bids,), (*moved.asks,))
    assert copy.bids is not moved.bids
    assert c.calculate([a, copy], NOW) == calc(a, moved)
    invalid = book("b", copy.bids, copy.asks, valid=False)
    alone = c.calculate([a, invalid], NOW)
    assert (alone.venues_used, alone.value) == (("a",), calc(a).value)
    assert c.calculate([a, copy], NOW) == calc(a, moved)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 2**44) | st.integers(2**44, 2**62), min_size=1, max_size=300),
    st.sampled_from([Decimal("0.01"), Decimal("0.1"), Decimal("0.25")]),
)
def test_cap_is_exact_for_any_sizes(sizes: list[int], trim: Decimal) -> None:
    """Exact against fractions, including sizes whose squares overflow int64 sums."""
    x = sorted(sizes)
    n = len(x)
    k = math.floor(trim * n)
    mean = Fraction(sum(x[k : n - k]), n - 2 * k)
    w = [x[k]] * k + x[k : n - k] + [x[n - k - 1]] * k
    wm = Fraction(sum(w), n)
    var = sum((v - wm) ** 2 for v in w) / (n - 1) if n > 1 else Fraction(0)
    expected = math.floor(mean) + math.isqrt(math.floor(25 * var))
    assert order_size_cap(np.array(sizes, dtype=np.int64), trim, 5) == expected


# -- the live path: views from L2Books, patched from tick to tick ------------------------------


def _tuple_view(view: BookView) -> BookView:
    """The same book as a hand-built view (no `BookView.changes`: read from the tuples)."""
    return BookView(view.venue, view.bids, view.asks, view.updated_ns, view.valid)


def _run_live(books: list[L2Book], ticks: list[Callable[[], None]]) -> int:
    """Each tick's edits, then the replica from live views and from hand-built copies of them
    (a second calculator, so the potentially-erroneous state runs alike): the same result.
    Returns how many ticks patched the merged levels instead of merging afresh."""
    live, ref = RtiCalculator(), RtiCalculator()
    patched = 0
    for tick in ticks:
        tick()
        views = [b.view() for b in books]
        before = live._state
        result = live.calculate(views, NOW)
        assert result == ref.calculate([_tuple_view(v) for v in views], NOW)
        after = live._state
        if before is not None and after is not None and after.bids is not before.bids:
            patched += after.bids.moves is not None
    return patched


@st.composite
def live_runs(draw: st.DrawFn) -> tuple[list[L2Book], list[Callable[[], None]]]:
    """1-4 venues quoting around $100,000 (never crossed), then ticks of random level edits,
    snapshots, verdict flips, stale spells, a venue moved 10 % off (potentially erroneous),
    and other consumers taking views in between (full or depth-limited: the calculator's
    change lists then no longer start from what it holds)."""
    n = draw(st.integers(1, 4))
    books = []
    for i in range(n):
        book_ = L2Book(f"v{i}")
        depth = draw(st.integers(1, 80))
        book_.apply_snapshot(
            [(100_000 * E8 - (1 + j) * 10**7, E8 // 10) for j in range(depth)],
            [(100_000 * E8 + (1 + j) * 10**7, E8 // 10) for j in range(depth)],
            NOW,
        )
        books.append(book_)
    edit = st.tuples(
        st.integers(0, n - 1),
        st.sampled_from(["bid", "ask", "snapshot", "invalid", "stale", "off", "peek", "peek3"]),
        st.integers(0, 90),
        st.integers(0, 300),
    )
    ticks = []
    for edits in draw(st.lists(st.lists(edit, max_size=8), min_size=1, max_size=10)):

        def tick(edits: list[tuple[int, str, int, int]] = edits) -> None:
            for b in books:
                b.valid = True
                b.updated_ns = NOW
            for venue, kind, offset, size in edits:
                b = books[venue]
                if kind == "snapshot":
                    b.apply_snapshot([(99_990 * E8, size * E8 // 100 + 1)], [(100_010 * E8, E8)])
                elif kind == "off":
                    b.apply_snapshot([(109_990 * E8, E8)], [(110_010 * E8, size * E8 // 100 + 1)])
                elif kind == "invalid":
                    b.valid = False
                elif kind == "stale":
                    b.updated_ns = NOW - 11 * 10**9
                elif kind == "peek":
                    b.view()
                elif kind == "peek3":
                    b.view(3)
                else:
                    sign = -1 if kind == "bid" else 1
                    b.set(kind, 100_000 * E8 + sign * (1 + offset) * 10**7, size * E8 // 100)

        ticks.append(tick)
    return books, ticks


@settings(max_examples=60, deadline=None)
@given(live_runs())
def test_live_views_give_the_results_of_their_tuples(
    run: tuple[list[L2Book], list[Callable[[], None]]],
) -> None:
    _run_live(*run)


def test_a_view_taken_by_another_consumer_breaks_no_patch() -> None:
    """A monitor's view between two ticks moves the book's change list on: the calculator
    must see that its list no longer starts from what it holds, and merge afresh."""
    books = []
    for i in range(3):
        book_ = L2Book(f"v{i}")
        book_.apply_snapshot(
            [(100_000 * E8 - (1 + j) * 10**7, (1 + (i + j) % 7) * E8 // 10) for j in range(60)],
            [(100_000 * E8 + (1 + j) * 10**7, (1 + (i * j) % 5) * E8 // 10) for j in range(60)],
            NOW,
        )
        books.append(book_)

    def tick(n: int) -> Callable[[], None]:
        def edits() -> None:
            books[0].set("bid", 100_000 * E8 - 3 * 10**7, (2 + n) * E8 // 10)
            books[0].view()  # another consumer
            books[0].set("bid", 100_000 * E8 - 2 * 10**7, (3 + n) * E8 // 10)
            books[1].set("bid", 100_000 * E8 - (5 + n) * 10**7, 0)

        return edits

    _run_live(books, [tick(n) for n in range(4)])


def test_deep_live_books_are_patched_and_exact() -> None:
    """Seven 1000-level books changed by a few random levels per tick (the live case): every
    tick patches what the last one merged, and gives what a fresh read of the tuples gives."""
    rng = random.Random(5)
    books = []
    for i in range(7):
        book_ = L2Book(f"v{i}")
        mid = 100_000 * E8 + rng.randint(-500, 500) * 10**6
        book_.apply_snapshot(
            [(mid - (1 + j) * 10**6, rng.randint(1, 300) * E8 // 100) for j in range(1000)],
            [(mid + (1 + j) * 10**6, rng.randint(1, 300) * E8 // 100) for j in range(1000)],
            NOW,
        )
        books.append(book_)

    def tick() -> None:
        for b in books:
            for _ in range(4):
                side = b.bids if rng.random() < 0.5 else b.asks
                price = side.price_at(min(int(rng.expovariate(1 / 40)), len(side) - 1))
                assert price is not None
                step = -(10**5) if side.is_bid else 10**5
                choice = rng.random()
                if choice < 0.5:
                    side.set(price, rng.randint(1, 300) * E8 // 100)
                elif choice < 0.75:
                    side.set(price, 0)
                else:
                    side.set(price + step, rng.randint(1, 300) * E8 // 100)

    assert _run_live(books, [tick] * 25) == 24


def test_implausible_prices_exclude_a_book() -> None:
    good = simple("good", "100000")
    far = book("far", good.bids, (*good.asks, (2**56 + 1, E8)))
    r = calc(good, far)
    assert r.venues_used == ("good",)
    assert r.excluded["far"].startswith("implausible prices")


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(1, 40), min_size=2, max_size=400),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 40)), max_size=60),
    st.integers(1, 5),
)
def test_kept_tails_give_the_sample_extremes(
    sizes: list[int], moves: list[tuple[int, int]], k: int
) -> None:
    """Tails kept through sizes leaving and joining (many ties) hold every size at or beyond
    their ends, and give the extremes a partial sort of the whole sample gives."""
    k = min(k, (len(sizes) - 1) // 2)
    sample = list(sizes)
    tails = _Tails.of(np.array(sample, dtype=np.int64), k)
    for leave_at, joining in moves:
        leaving = sample.pop(leave_at % len(sample))
        sample.append(joining)
        tails.move([leaving], [joining])
        if tails.low and tails.high:  # else spent: it serves no more (`extremes` is None)
            assert tails.low == sorted(x for x in sample if x <= tails.low[-1])
            assert tails.high == sorted(x for x in sample if x >= tails.high[0])
        if k:
            got = tails.extremes(k)
            assert got is None or got == _extremes(np.array(sample, dtype=np.int64), k)
