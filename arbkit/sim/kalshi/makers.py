"""Market makers of the embedded Kalshi world: quotes that follow fair value, late and noisy.

Each active market has one `Quoter`. Its fair value is the lognormal probability that the
settlement average ends on the YES side of the strike given the index now and the time
left; the quoter tracks that value through an exponential lag (``lag_s``) and adds noise, so
its quotes trail the index and edges open and close. Books are YES-bid and NO-bid ladders of
exact ints (``price_e4`` → ``qty_e2``), as on Kalshi.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from arbkit.sim.kalshi.markets import NS, Market

_YEAR_S = 365.25 * 24 * 3600
ONE_E4 = 10_000


@dataclass
class Book:
    """The world's true book of one market: bids per side, NO-leg prices."""

    yes: dict[int, int] = field(default_factory=dict)
    no: dict[int, int] = field(default_factory=dict)

    def side(self, name: str) -> dict[int, int]:
        return self.yes if name == "yes" else self.no

    def apply(self, side: str, price_e4: int, delta_e2: int) -> None:
        levels = self.side(side)
        qty = levels.get(price_e4, 0) + delta_e2
        if qty < 0:
            msg = f"book level {side}@{price_e4} would go negative"
            raise ValueError(msg)
        if qty:
            levels[price_e4] = qty
        else:
            levels.pop(price_e4, None)


Change = tuple[str, int, int]
"""(side, price_e4, delta_e2)"""


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def fair_yes(market: Market, index_e2: int, now_ns: int, annual_vol: float) -> float | None:
    """P(YES) under a driftless lognormal index, from the index now and the time to close."""
    if index_e2 <= 0:
        return None
    tau = max(market.close_ns - now_ns, NS) / NS / _YEAR_S
    sd = annual_vol * math.sqrt(tau)
    s = math.log(index_e2)

    def above(k_e2: int | None) -> float:
        if k_e2 is None:
            return 0.0
        return _norm_cdf((s - math.log(max(k_e2, 1))) / sd)

    kind = market.strike_type
    if kind in ("greater", "greater_or_equal"):
        return above(market.floor_e2) if market.floor_e2 is not None else None
    if kind == "less":
        return 1.0 - above(market.cap_e2)
    if market.floor_e2 is None or market.cap_e2 is None:
        return None
    return max(above(market.floor_e2) - above(market.cap_e2 + 1), 0.0)


def tick_below(price_e4: int, tapered: bool) -> int:
    """The next lower valid price (``tapered_deci_cent`` or ``linear_cent`` grid)."""
    if tapered and (price_e4 <= 1000 or price_e4 > 9000):
        return price_e4 - 10
    return price_e4 - 100


def snap_down(price_e4: int, tapered: bool) -> int:
    """Largest valid price not above ``price_e4``."""
    step = 10 if tapered and (price_e4 < 1000 or price_e4 >= 9000) else 100
    return price_e4 // step * step


class Quoter:
    """One market's maker: ``levels`` bids per side around a lagged, noisy fair value."""

    def __init__(
        self,
        rng: random.Random,
        *,
        tapered: bool,
        fractional: bool,
        lag_s: float,
        noise: float,
        levels: int = 5,
        half_spread_e4: int = 150,
    ) -> None:
        self.rng = rng
        self.tapered = tapered
        self.fractional = fractional
        self.lag_s = lag_s
        self.noise = noise
        self.levels = levels
        self.half_spread_e4 = half_spread_e4
        self.lagged: float | None = None
        self._last_ns = 0

    def size(self) -> int:
        """A fresh level size in hundredths (whole contracts unless ``fractional``)."""
        qty = self.rng.randint(1, 400) * 100
        if self.fractional and self.rng.random() < 0.3:
            qty += self.rng.randint(1, 99)
        return qty

    def _ladder(self, best: int) -> list[int]:
        out: list[int] = []
        p = snap_down(best, self.tapered)
        while p > 0 and len(out) < self.levels:
            out.append(p)
            p = tick_below(p, self.tapered)
        return out

    def requote(self, book: Book, fair: float, now_ns: int) -> list[Change]:
        """Move the ladders towards the lagged fair value; the changes are applied to ``book``."""
        dt = (now_ns - self._last_ns) / NS if self._last_ns else 0.0
        self._last_ns = now_ns
        if self.lagged is None or self.lag_s <= 0:
            self.lagged = fair
        else:
            self.lagged += (fair - self.lagged) * (1.0 - math.exp(-dt / self.lag_s))
        center = self.lagged + self.rng.gauss(0.0, self.noise)
        center_e4 = min(max(round(center * ONE_E4), 0), ONE_E4)
        changes: list[Change] = []
        for side, best in (
            ("yes", center_e4 - self.half_spread_e4),
            ("no", ONE_E4 - center_e4 - self.half_spread_e4),
        ):
            target = self._ladder(best)
            levels = book.side(side)
            changes.extend((side, p, -levels[p]) for p in levels if p not in target)
            for price in target:
                if price not in levels:
                    changes.append((side, price, self.size()))
                elif self.rng.random() < 0.1:
                    changes.append((side, price, self.size() - levels[price]))
        changes = [c for c in changes if c[2]]
        for side, price, delta in changes:
            book.apply(side, price, delta)
        return changes

    def take(self, book: Book) -> tuple[Change, int, str] | None:
        """A taker hits the best bid of a random side: (change, yes_price_e4, taker_side)."""
        sides = [s for s in ("yes", "no") if book.side(s)]
        if not sides:
            return None
        side = self.rng.choice(sides)
        levels = book.side(side)
        price = max(levels)
        amount = min(levels[price], self.rng.randint(1, 50) * 100)
        book.apply(side, price, -amount)
        if side == "yes":
            return (side, price, -amount), price, "no"
        return (side, price, -amount), ONE_E4 - price, "yes"
