"""Fair value P(YES) of Kalshi's BTC markets from the index, time to close and volatility.

Settlement (shared/reference/kalshi-api.md §6): the simple average A of the ``n`` one-second
BRTI values of the ``window_s`` (60) seconds ``[close − 60 s, close)``; the one-second value of
second ``s`` is the index at ``s`` (the last calculated in ``(s − 1 s, s]``, as
`arbkit.index.settlement`). YES iff A ≥ floor (``greater_or_equal``, KXBTC15M, whose floor is
itself the 60-s average before open), A > floor (``greater``, KXBTCD), floor ≤ A ≤ cap
(``between``, KXBTC), A < cap (``less``, KXBTC's bottom bucket).

The model. At time t with index value S, the index is a driftless geometric Brownian motion
with per-second log variance ``var`` (from `EwmaVol`). Seconds of the window at or before t
are observed (their sum O over ``m`` seconds is known); the ``u`` seconds after t, at
``d_1 < … < d_u`` seconds from now, are not. Their sum U = Σ S(t + d_j) has, exactly,

    E[U] = u·S,   E[U²] = S² Σ_i Σ_j exp(var · min(d_i, d_j)) = S² Σ_k (2(u − k) − 1) exp(var · d_k)

(k = 0..u−1, ``d`` ascending), so A = (O + U)/n with n = m + u (missing observed seconds are left
out, as the settlement rule does). The approximation: U is taken lognormal with those two
moments (the Lévy / Turnbull–Wakeman moment match for arithmetic averages of GBM), so
P(U > x) = Φ((ln(E[U]/x) − v/2)/√v) with v = ln(E[U²]/E[U]²), and x = n·K − O. Its error is
third order in σ√T (the skew of a sum of lognormals); the Monte Carlo test bounds it over 5 s
to 1 h to close. Ties (≥ vs >) and the 2-dp rounding of the average have probability ~0
under the model and are not distinguished.
"""

from __future__ import annotations

import math
from enum import StrEnum
from functools import cache

SECOND_NS = 10**9
WINDOW_S = 60
E8 = 10**8


class StrikeType(StrEnum):
    """Kalshi's ``strike_type`` values the model prices (KalshiMarketRow.strike_type)."""

    GREATER_OR_EQUAL = "greater_or_equal"
    GREATER = "greater"
    LESS = "less"
    LESS_OR_EQUAL = "less_or_equal"
    BETWEEN = "between"


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def window_ahead(now_ns: int, close_ns: int, *, window_s: int = WINDOW_S) -> tuple[float, int]:
    """The window seconds still ahead of ``now`` (``s > now``): seconds to the first, and how
    many (they are one second apart)."""
    start = close_ns - window_s * SECOND_NS
    first = start if now_ns < start else (now_ns // SECOND_NS + 1) * SECOND_NS
    count = max(0, (close_ns - first + SECOND_NS - 1) // SECOND_NS)
    return (first - now_ns) / SECOND_NS, count


def unobserved_offsets(now_ns: int, close_ns: int, *, window_s: int = WINDOW_S) -> list[float]:
    """Seconds from ``now`` to each window second still ahead, ascending."""
    first, count = window_ahead(now_ns, close_ns, window_s=window_s)
    return [first + k for k in range(count)]


_TERMS = 16


@cache
def _weight_moments(u: int) -> tuple[float, ...]:
    """``M_j = Σ_k (2(u − k) − 1)·k^j`` for j = 0.._TERMS, k < u (exact ints, then floats)."""
    return tuple(float(sum((2 * (u - k) - 1) * k**j for k in range(u))) for j in range(_TERMS + 1))


def log_spread(var_per_s: float, first_s: float, count: int) -> float:
    """``v = ln(E[U²]/E[U]²)`` of U = Σ S(t + first + k), k < count (see the module docstring).

    ``E[U²]/E[U]² − 1 = Σ_k w_k·expm1(var·(first + k))/u²`` with w_k = 2(u − k) − 1 (they sum
    to u²). Hot path: ``expm1(a + bk) = expm1(a) + e^a·expm1(bk)`` and ``Σ_k w_k·expm1(bk) =
    Σ_j b^j/j!·M_j`` (`_weight_moments`), a series that converges in a few terms for any
    realistic variance (b·u ≪ 1); otherwise the sum is taken term by term. ``expm1``/``log1p``
    keep a tiny variance's precision.
    """
    u = count
    a = var_per_s * first_s
    moments = _weight_moments(u)
    bu = var_per_s * u
    series = 0.0
    if bu < 0.5:
        coef = 1.0  # b^j / j!
        for j in range(1, _TERMS + 1):
            coef *= var_per_s / j
            term = coef * moments[j]
            series += term
            if term <= series * 1e-17:
                break
        total = moments[0] * math.expm1(a) + math.exp(a) * series
    else:
        total = sum((2 * (u - k) - 1) * math.expm1(a + var_per_s * k) for k in range(u))
    return math.log1p(total / (u * u))


def prob_above(
    threshold: float,
    *,
    value: float,
    var_per_s: float,
    first_s: float,
    count: int,
    observed_sum: float = 0.0,
    observed_count: int = 0,
) -> float:
    """P(A > threshold) for the window average A with ``count`` seconds ahead, the first in
    ``first_s`` seconds (see the module docstring)."""
    n = observed_count + count
    if n == 0:
        msg = "the settlement window has no seconds to average"
        raise ValueError(msg)
    x = n * threshold - observed_sum
    if count == 0:
        return 1.0 if x < 0 else 0.0
    if x <= 0:
        return 1.0
    mean = count * value
    v = log_spread(var_per_s, first_s, count)
    if v <= 0.0:
        return 1.0 if mean > x else 0.0
    return _phi((math.log(mean / x) - v / 2) / math.sqrt(v))


def prob_yes(
    strike_type: StrikeType,
    floor_e8: int | None,
    cap_e8: int | None,
    *,
    value_e8: int,
    var_per_s: float,
    now_ns: int,
    close_ns: int,
    observed_sum_e8: int = 0,
    observed_count: int = 0,
    window_s: int = WINDOW_S,
) -> float:
    """P(YES) of a market at ``now_ns``: index ``value_e8`` now, ``observed_sum_e8`` over the
    ``observed_count`` window seconds already known (``[close − window, close)``, ``s ≤ now``).

    Raises ValueError when the strike the type needs is missing (e.g. KXBTC15M's floor before
    Kalshi publishes it).
    """
    first, count = window_ahead(now_ns, close_ns, window_s=window_s)

    def above(strike_e8: int | None, what: str) -> float:
        if strike_e8 is None:
            msg = f"a {strike_type} market needs its {what} strike"
            raise ValueError(msg)
        return prob_above(
            strike_e8 / E8,
            value=value_e8 / E8,
            var_per_s=var_per_s,
            first_s=first,
            count=count,
            observed_sum=observed_sum_e8 / E8,
            observed_count=observed_count,
        )

    if strike_type in (StrikeType.GREATER, StrikeType.GREATER_OR_EQUAL):
        return above(floor_e8, "floor")
    if strike_type in (StrikeType.LESS, StrikeType.LESS_OR_EQUAL):
        return 1.0 - above(cap_e8, "cap")
    return max(0.0, above(floor_e8, "floor") - above(cap_e8, "cap"))


class EwmaVol:
    """Online per-second variance of the index: an EWMA of squared one-second log returns.

    Fed one-second values (``second_ns``, value) in time order; each return between
    consecutive seconds ``g`` apart contributes ``r²/g`` (a per-second variance sample) with
    weight ``1 − λ^g``, λ = 2^(−1/half_life_s), so a gap counts for the seconds it spans.
    ``variance`` is None until ``min_returns`` returns were seen; a floor ``min_var`` keeps a
    flat stretch of index from making every market certain.
    """

    __slots__ = ("_count", "_last", "_max_gap", "_var", "decay", "min_returns", "min_var")

    def __init__(
        self,
        *,
        half_life_s: float = 300.0,
        min_returns: int = 30,
        min_var: float = 1e-10,
        max_gap_s: int = 60,
    ) -> None:
        self.decay = 0.5 ** (1.0 / half_life_s)
        self.min_returns = min_returns
        self.min_var = min_var
        self._max_gap = max_gap_s
        self._last: tuple[int, int] | None = None
        self._var = 0.0
        self._count = 0

    def update(self, second_ns: int, value_e8: int) -> None:
        """A one-second value; a gap longer than ``max_gap_s`` restarts from this value
        (without forgetting the variance)."""
        last = self._last
        self._last = (second_ns, value_e8)
        if last is None or second_ns <= last[0] or value_e8 <= 0 or last[1] <= 0:
            return
        gap = (second_ns - last[0]) // SECOND_NS
        if gap > self._max_gap:
            return
        r = math.log(value_e8 / last[1])
        weight = 1.0 - self.decay**gap
        if self._count == 0:
            self._var = r * r / gap
        else:
            self._var += weight * (r * r / gap - self._var)
        self._count += 1

    @property
    def variance(self) -> float | None:
        """Per-second log-return variance, or None while warming up."""
        if self._count < self.min_returns:
            return None
        return max(self._var, self.min_var)
