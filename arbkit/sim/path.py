"""A seeded bitcoin reference price path: diffusion with volatility clustering and jumps.

Every venue of the world quotes around this path (with its own spread, noise and delay), so
the BRTI computed from their books follows it too. The path is a deterministic function of
(seed, time): two worlds with the same seed see the same prices at the same instants, and
any instant can be asked for in any order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_SECONDS_PER_YEAR = 365.25 * 24 * 3600


@dataclass(frozen=True)
class PathParams:
    """Shape of the path; the defaults look like an ordinary bitcoin day."""

    start_price: float = 100_000.0
    annual_vol: float = 0.55
    step_ms: int = 100
    garch_alpha: float = 0.06
    garch_beta: float = 0.92
    jumps_per_hour: float = 1.5
    jump_sigma: float = 0.0015


class PricePath:
    """Log-price random walk on a fixed time grid starting at ``start_ns``.

    Per step the return is ``sigma_t * z`` with GARCH(1,1) variance (calm and busy spells),
    plus a Poisson jump. Prices between grid points hold the last grid value.
    """

    _CHUNK = 8192

    def __init__(self, seed: int, start_ns: int, params: PathParams | None = None) -> None:
        self.seed = seed
        self.start_ns = start_ns
        self.params = p = params or PathParams()
        self._step_ns = p.step_ms * 1_000_000
        dt = p.step_ms / 1000.0 / _SECONDS_PER_YEAR
        self._var0 = p.annual_vol**2 * dt
        self._omega = self._var0 * (1.0 - p.garch_alpha - p.garch_beta)
        self._jump_p = p.jumps_per_hour * p.step_ms / 3_600_000.0
        self._rng = np.random.default_rng(seed)
        self._log = np.empty(0)
        self._last_log = math.log(p.start_price)
        self._var = self._var0

    def _extend(self, upto: int) -> None:
        p = self.params
        chunks = []
        have = len(self._log)
        while have < upto:
            z = self._rng.standard_normal(self._CHUNK)
            jumps = self._rng.random(self._CHUNK) < self._jump_p
            jz = self._rng.standard_normal(self._CHUNK) * p.jump_sigma
            out = np.empty(self._CHUNK)
            x, var = self._last_log, self._var
            for i in range(self._CHUNK):
                eps = math.sqrt(var) * z[i]
                x += eps - 0.5 * var
                if jumps[i]:
                    x += jz[i]
                out[i] = x
                var = self._omega + p.garch_alpha * eps * eps + p.garch_beta * var
            self._last_log, self._var = x, var
            chunks.append(out)
            have += self._CHUNK
        self._log = np.concatenate([self._log, *chunks])

    def price_at(self, t_ns: int) -> float:
        """The reference price at wall-clock ``t_ns`` (the start price before the start)."""
        i = (t_ns - self.start_ns) // self._step_ns
        if i < 0:
            return self.params.start_price
        if i >= len(self._log):
            self._extend(i + 1)
        return float(math.exp(self._log[i]))

    def prices(self, start_ns: int, end_ns: int, every_ns: int) -> np.ndarray:
        """Prices sampled every ``every_ns`` over ``[start_ns, end_ns)``."""
        return np.array([self.price_at(t) for t in range(start_ns, end_ns, every_ns)])
