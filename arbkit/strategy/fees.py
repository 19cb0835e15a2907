"""Kalshi trading fees from a series' own metadata, in exact integer arithmetic.

The fee model (shared/reference/kalshi-api.md §5, effective 2025-07-01):

- taker ``roundup(M × 0.07 × C × P × (1 − P))``; maker ``roundup(M × 0.0175 × C × P × (1 − P))``
  only on series whose ``fee_type`` is ``quadratic_with_maker_fees`` (``quadratic`` charges
  makers nothing); C contracts, P the price in dollars, M the series' ``fee_multiplier``.
  No settlement fee, cancels free.
- Rounding, two eras (§5 "Rounding"):
  `Rounding.CENTICENT` (Kalshi's fee_rounding page, 2026, subpenny era): the trade fee is rounded
  UP to $0.0001 per fill; the balance change ``revenue − fee`` is then floored to the member's
  balance precision ($0.0001 direct members, $0.01 others), the difference being a "rounding
  fee", and a per-order accumulator of those rounding fees refunds a whole cent each time it
  reaches $0.01, so many small fills converge to the single-fill fee (`OrderFees`).
  `Rounding.CENT` (the pre-2026 description): each fill's fee rounded up to the next cent.
  The documented example "10 @ $0.50 = $0.175 → $0.18" is both: the cent rule directly, and
  in the subpenny era the $0.1750 trade fee plus $0.0050 rounding fee at cent precision.

Prices are ``*_e4`` ($0.0001), counts whole contracts (or ``*_e2`` with ``count_e2=True``),
fees ``*_e4``. The multiplier is held as an exact `Fraction` of its decimal text, so 0.5 is 1/2.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from arbkit.core.clock import rfc3339_ns
from arbkit.core.fixed import KALSHI_PRICE_SCALE, KALSHI_QTY_SCALE

ONE_E4 = KALSHI_PRICE_SCALE
TAKER_RATE = Fraction(7, 100)
"""0.07 (§5)."""
MAKER_RATE = Fraction(175, 10_000)
"""0.0175 (§5; replaced the flat $0.0025/contract maker fee on 2025-07-01)."""
CENT_E4 = 100
CENTICENT_E4 = 1

SUBPENNY_FROM_NS = 1_767_225_600_000_000_000
"""2026-01-01T00:00Z: fills from then on use `Rounding.CENTICENT` when a schedule picks the rule
by date (§5 dates the cent rule "pre-2026"; the exact switch day is not documented)."""


class FeeType(StrEnum):
    """A series' ``fee_type`` (§5; spec S4 Series)."""

    QUADRATIC = "quadratic"
    QUADRATIC_WITH_MAKER_FEES = "quadratic_with_maker_fees"
    FLAT = "flat"


class Role(StrEnum):
    TAKER = "taker"
    MAKER = "maker"


class Rounding(StrEnum):
    """How a fill's fee is rounded (§5): up to $0.0001 (2026 subpenny era) or up to $0.01."""

    CENTICENT = "centicent"
    CENT = "cent"


def _exact(value: float | int | str | Decimal) -> Fraction:
    """A JSON number as the decimal it was written as (0.5 -> 1/2, not a binary float)."""
    return Fraction(Decimal(str(value)))


def trade_fee_e4(
    price_e4: int,
    count: int,
    *,
    rate: Fraction = TAKER_RATE,
    multiplier: Fraction = Fraction(1),
    rounding: Rounding = Rounding.CENTICENT,
    count_e2: bool = False,
) -> int:
    """``roundup(M × rate × C × P × (1 − P))`` in $0.0001, rounded up to the rule's unit."""
    if not 0 <= price_e4 <= ONE_E4:
        msg = f"price {price_e4} e4 is outside $0..$1"
        raise ValueError(msg)
    if count < 0:
        msg = f"count {count} is negative"
        raise ValueError(msg)
    # fee_e4 = M·rate·C·p(1e4 − p)/1e4 with p in e4 (one e4 for P, one for 1 − P, × 1e4 to e4),
    # as one integer ratio: no rounding until the single round-up.
    unit = CENT_E4 if rounding is Rounding.CENT else CENTICENT_E4
    num: int = multiplier.numerator * rate.numerator * count * price_e4 * (ONE_E4 - price_e4)
    den: int = multiplier.denominator * rate.denominator * ONE_E4 * unit
    if count_e2:
        den *= KALSHI_QTY_SCALE
    return -(-num // den) * unit


def taker_fee_e4(
    price_e4: int,
    count: int,
    *,
    multiplier: Fraction = Fraction(1),
    rounding: Rounding = Rounding.CENTICENT,
    count_e2: bool = False,
) -> int:
    """The taker trade fee of one fill (§5: ``roundup(M × 0.07 × C × P × (1 − P))``)."""
    return trade_fee_e4(
        price_e4,
        count,
        rate=TAKER_RATE,
        multiplier=multiplier,
        rounding=rounding,
        count_e2=count_e2,
    )


def maker_fee_e4(
    price_e4: int,
    count: int,
    *,
    multiplier: Fraction = Fraction(1),
    rounding: Rounding = Rounding.CENTICENT,
    count_e2: bool = False,
) -> int:
    """The maker trade fee of one fill on a series that charges makers (§5: 0.0175)."""
    return trade_fee_e4(
        price_e4,
        count,
        rate=MAKER_RATE,
        multiplier=multiplier,
        rounding=rounding,
        count_e2=count_e2,
    )


@dataclass(frozen=True, slots=True)
class FeeTerms:
    """A series' fee terms in force from ``from_ns`` (0: as far back as known)."""

    fee_type: FeeType
    multiplier: Fraction
    from_ns: int = 0

    def rate(self, role: Role) -> Fraction | None:
        """The fee-model rate for a role; None where the role pays nothing (maker on a
        ``quadratic`` series) or the series uses the flat table (not modelled)."""
        if self.fee_type is FeeType.FLAT:
            return None
        if role is Role.TAKER:
            return TAKER_RATE
        return MAKER_RATE if self.fee_type is FeeType.QUADRATIC_WITH_MAKER_FEES else None


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """One series' fee terms over time: the current ``GET /series/{ticker}`` terms plus the
    scheduled changes of ``GET /series/fee_changes``, looked up "as of" a time.

    ``rounding`` fixes the rounding rule; None picks it by date (`SUBPENNY_FROM_NS`).
    """

    series: str
    terms: tuple[FeeTerms, ...]
    rounding: Rounding | None = None
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.terms:
            msg = f"series {self.series}: a fee schedule needs at least one set of terms"
            raise ValueError(msg)
        ordered = tuple(sorted(self.terms, key=lambda t: t.from_ns))
        object.__setattr__(self, "terms", ordered)
        object.__setattr__(self, "_starts", tuple(t.from_ns for t in ordered))

    @classmethod
    def from_series(
        cls,
        series: Mapping[str, Any],
        fee_changes: Mapping[str, Any] | None = None,
        *,
        rounding: Rounding | None = None,
    ) -> FeeSchedule:
        """From a ``GET /series/{ticker}`` body (``{"series": {...}}`` or the bare object) and
        optionally a ``GET /series/fee_changes`` body (``{"series_fee_change_arr": [...]}``;
        its entries for other series are ignored). Wire format: Trade API v2, 2026 (spec S4
        Series ``fee_type``/``fee_multiplier``; SeriesFeeChange ``series_ticker``, ``fee_type``,
        ``fee_multiplier``, ``scheduled_ts``, also seen PascalCase in the docs' example)."""
        body = series.get("series", series)
        ticker = str(body["ticker"])
        terms = [FeeTerms(FeeType(body["fee_type"]), _exact(body["fee_multiplier"]))]
        if fee_changes is not None:
            terms.extend(_changes(ticker, fee_changes.get("series_fee_change_arr") or []))
        return cls(ticker, tuple(terms), rounding)

    def at(self, time_ns: int) -> FeeTerms:
        """The terms in force at ``time_ns`` (the earliest known before any change)."""
        i = bisect.bisect_right(self._starts, time_ns) - 1
        return self.terms[max(i, 0)]

    def rounding_at(self, time_ns: int) -> Rounding:
        if self.rounding is not None:
            return self.rounding
        return Rounding.CENTICENT if time_ns >= SUBPENNY_FROM_NS else Rounding.CENT

    def fee_e4(self, price_e4: int, count: int, time_ns: int, *, role: Role = Role.TAKER) -> int:
        """The trade fee of one fill at ``time_ns`` (0 where the role pays none)."""
        terms = self.at(time_ns)
        rate = terms.rate(role)
        if rate is None:
            if terms.fee_type is FeeType.FLAT:
                msg = f"series {self.series}: flat fee tables are not modelled"
                raise ValueError(msg)
            return 0
        return trade_fee_e4(
            price_e4,
            count,
            rate=rate,
            multiplier=terms.multiplier,
            rounding=self.rounding_at(time_ns),
        )


def _changes(ticker: str, entries: Iterable[Mapping[str, Any]]) -> list[FeeTerms]:
    out = []
    for entry in entries:
        if str(entry.get("series_ticker", entry.get("SeriesTicker"))) != ticker:
            continue
        out.append(
            FeeTerms(
                FeeType(entry.get("fee_type", entry.get("FeeType"))),
                _exact(entry.get("fee_multiplier", entry.get("FeeMultiplier"))),
                rfc3339_ns(str(entry.get("scheduled_ts", entry.get("ScheduledTs")))),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class FillFee:
    """One fill's fee components (§5 fee_rounding): ``net = trade + rounding − rebate``."""

    trade_e4: int
    rounding_e4: int
    rebate_e4: int
    balance_change_e4: int

    @property
    def net_e4(self) -> int:
        return self.trade_e4 + self.rounding_e4 - self.rebate_e4


class OrderFees:
    """The fees of one order's fills in the subpenny era, with its rounding accumulator.

    Per fill (§5, Kalshi fee_rounding page): the trade fee rounded up to $0.0001; the
    balance change ``revenue − trade fee`` floored to the member's precision
    (``precision_e4``: 100 for $0.01, non-direct members; 1 for direct members); the
    difference is the rounding fee, added to the order's accumulator; each time the
    accumulator reaches $0.01 a one-cent rebate is paid and it drops by $0.01. The page
    says "exceeds $0.01"; we rebate at exactly $0.01 because that is what makes the
    documented convergence hold (100 one-lot fills at $0.50 cost $1.75, as one fill does).
    The accumulator carries across taker and maker fills of the same order.
    """

    def __init__(self, *, precision_e4: int = CENT_E4) -> None:
        self.precision_e4 = precision_e4
        self.accumulated_e4 = 0

    def fill(
        self,
        price_e4: int,
        count: int,
        *,
        buy: bool = True,
        rate: Fraction | None = TAKER_RATE,
        multiplier: Fraction = Fraction(1),
    ) -> FillFee:
        """One fill of ``count`` whole contracts at ``price_e4`` (``rate`` None: no fee)."""
        trade = (
            0 if rate is None else trade_fee_e4(price_e4, count, rate=rate, multiplier=multiplier)
        )
        revenue = (-1 if buy else 1) * price_e4 * count
        change = revenue - trade
        floored = (change // self.precision_e4) * self.precision_e4
        rounding = change - floored
        self.accumulated_e4 += rounding
        rebate = (self.accumulated_e4 // CENT_E4) * CENT_E4
        self.accumulated_e4 -= rebate
        return FillFee(trade, rounding, rebate, floored + rebate)
