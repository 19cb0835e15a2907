"""Fair value against Monte Carlo, and the online volatility estimator.

The Monte Carlo simulates the model itself exactly (driftless GBM sampled at the settlement
window's seconds, the observed part fixed) and checks the closed form's lognormal
approximation of the window average within 4 standard errors, over times to close from inside
the window (most of it observed) to an hour, and strikes from −2 to +2 standard deviations.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest

from arbkit.strategy.fairvalue import (
    E8,
    SECOND_NS,
    EwmaVol,
    StrikeType,
    log_spread,
    prob_yes,
    unobserved_offsets,
)

SIGMA = 3e-4  # per-second log vol (~170 %/yr): a stressed BTC, so the skew is visible
PATHS = 200_000
S0 = 100_000.0
CLOSE_NS = 10_000 * SECOND_NS


def simulate(now_ns: int, rng: np.random.Generator) -> tuple[np.ndarray, int, float]:
    """Window averages of PATHS paths from S0 at ``now_ns``, with the observed seconds fixed
    at S0 x 1.001 (the window so far ran above the current value)."""
    offsets = unobserved_offsets(now_ns, CLOSE_NS)
    observed = 60 - len(offsets)
    observed_sum = observed * S0 * 1.001
    log = np.zeros(PATHS)
    total = np.zeros(PATHS)
    last = 0.0
    for d in offsets:
        dt = d - last
        log += SIGMA * math.sqrt(dt) * rng.standard_normal(PATHS) - 0.5 * SIGMA**2 * dt
        total += np.exp(log)
        last = d
    return (observed_sum + S0 * total) / 60, observed, observed_sum


@pytest.mark.parametrize("to_close_s", [3.5, 30.0, 59.5, 600.0, 3600.0])
def test_prob_matches_monte_carlo(to_close_s: float) -> None:
    rng = np.random.default_rng(int(to_close_s * 10))
    now_ns = CLOSE_NS - int(to_close_s * SECOND_NS)
    averages, observed, observed_sum = simulate(now_ns, rng)
    mean, sd = float(averages.mean()), float(averages.std())
    price = partial(
        prob_yes,
        value_e8=int(S0 * E8),
        var_per_s=SIGMA**2,
        now_ns=now_ns,
        close_ns=CLOSE_NS,
        observed_sum_e8=int(observed_sum * E8),
        observed_count=observed,
    )
    checked = 0
    for z in (-2.0, -1.0, -0.3, 0.0, 0.3, 1.0, 2.0):
        strike = mean + z * sd
        floor_e8 = round(strike * E8)
        mc = float((averages > floor_e8 / E8).mean())
        se = math.sqrt(max(mc * (1 - mc), 1 / PATHS) / PATHS)
        model = price(StrikeType.GREATER, floor_e8, None)
        assert abs(model - mc) <= 4 * se, (to_close_s, z, model, mc, se)
        cap_e8 = round((strike + sd) * E8)
        mc_between = float(((averages >= floor_e8 / E8) & (averages <= cap_e8 / E8)).mean())
        between = price(StrikeType.BETWEEN, floor_e8, cap_e8)
        se_b = math.sqrt(max(mc_between * (1 - mc_between), 1 / PATHS) / PATHS)
        assert abs(between - mc_between) <= 4 * se_b, (to_close_s, z, between, mc_between)
        less = price(StrikeType.LESS, None, floor_e8)
        assert less == pytest.approx(1 - model)
        checked += 1
    assert checked == 7


def test_observed_part_moves_the_mean_and_shrinks_the_spread() -> None:
    close = CLOSE_NS
    strike = int(S0 * E8)
    price = partial(prob_yes, value_e8=strike, var_per_s=SIGMA**2, close_ns=close)
    # At the money with nothing observed: a little under 1/2 (the lognormal's median < mean).
    half = price(StrikeType.GREATER, strike, None, now_ns=close - 120 * SECOND_NS)
    assert 0.49 < half < 0.5
    # 50 of 60 seconds observed 0.1 % above the strike: YES is near certain.
    late = close - 10 * SECOND_NS
    above = 50 * int(S0 * 1.001 * E8)
    sure = price(
        StrikeType.GREATER, strike, None, now_ns=late, observed_sum_e8=above, observed_count=50
    )
    assert sure > 0.99
    # The whole window observed: the outcome is known.
    done = partial(price, now_ns=close, observed_sum_e8=60 * (strike + 1), observed_count=60)
    assert done(StrikeType.GREATER, strike, None) == 1.0
    assert done(StrikeType.GREATER, strike + 2, None) == 0.0
    with pytest.raises(ValueError, match="floor"):
        price(StrikeType.GREATER_OR_EQUAL, None, None, now_ns=late)


def test_unobserved_offsets_are_the_window_seconds_ahead() -> None:
    close = CLOSE_NS
    assert unobserved_offsets(close - 120 * SECOND_NS, close) == [60.0 + k for k in range(60)]
    inside = unobserved_offsets(close - 2_500_000_000, close)  # 2.5 s to close
    assert inside == [0.5, 1.5]  # seconds close-2 and close-1 (close itself is not sampled)
    assert unobserved_offsets(close, close) == []


@pytest.mark.parametrize("var", [1e-12, 1e-10, 9e-8, 1e-5, 1e-3])
@pytest.mark.parametrize(("first", "count"), [(0.5, 1), (0.25, 37), (3540.0, 60), (86_400.0, 60)])
def test_log_spread_series_matches_the_direct_sum(var: float, first: float, count: int) -> None:
    u = count
    direct = sum((2 * (u - k) - 1) * math.expm1(var * (first + k)) for k in range(u))
    assert log_spread(var, first, count) == pytest.approx(math.log1p(direct / u**2), rel=1e-9)


def test_log_spread_takes_the_direct_sum_past_the_series_range() -> None:
    var, first, u = 2e-2, 10.0, 60  # b·u = 1.2: the series would need too many terms
    direct = sum((2 * (u - k) - 1) * math.expm1(var * (first + k)) for k in range(u))
    assert log_spread(var, first, u) == pytest.approx(math.log1p(direct / u**2), rel=1e-12)


def test_ewma_vol_estimates_the_per_second_variance() -> None:
    rng = np.random.default_rng(7)
    vol = EwmaVol(half_life_s=3000, min_returns=30)
    value = S0
    for k in range(20_000):
        vol.update(k * SECOND_NS, round(value * E8))
        if k < 29:
            assert vol.variance is None  # warming up
        value *= math.exp(SIGMA * rng.standard_normal())
    assert vol.variance is not None
    # ~4300 effective returns: the variance's relative standard error is ~2 %.
    assert vol.variance == pytest.approx(SIGMA**2, rel=0.1)


def test_ewma_vol_gaps_floor_and_restarts() -> None:
    vol = EwmaVol(half_life_s=10, min_returns=1, min_var=1e-12, max_gap_s=60)
    vol.update(0, 10**13)
    vol.update(4 * SECOND_NS, round(10**13 * math.exp(0.002)))  # one return over 4 s
    assert vol.variance == pytest.approx(0.002**2 / 4)
    vol.update(100 * SECOND_NS, 2 * 10**13)  # a gap past max_gap: no return taken
    assert vol.variance == pytest.approx(0.002**2 / 4)
    flat = EwmaVol(min_returns=1, min_var=1e-12)
    flat.update(0, 10**13)
    flat.update(SECOND_NS, 10**13)
    assert flat.variance == 1e-12
