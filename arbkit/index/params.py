"""CF Real Time Index parameters: one row per index, in one table.

Values from the reference (``brti-and-venues.md`` §1.3–1.5: CF RTI methodology v16.6 §6.2 as
transcribed by public reimplementations, and CF's blog announcements for the cap, the PED and its
re-entry rule). Methodology v16.7 (2026-06-08) made the spacing "Dynamic" for every index; its
formula is not public in our sources, so the fixed v16.6 spacings below may now be off.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class RtiParams:
    """Parameters of one RTI (exact Decimals for everything compared or scaled exactly).

    ``spacing`` is the price-volume curve granularity s and ``deviation`` the mid spread-volume
    limit D (utilized depth); ``ped`` excludes a venue whose mid is further than that from the
    median of the other venues, ``ped_reentry`` (50 % of PED) is how close it must come back
    before it is used again; ``lag_threshold_s`` is the Retrieval Lag Threshold (older books are
    "delayed"). The cap fields define the dynamic order-size cap: the sample is every venue level
    within ``cap_window`` of the consolidated best price, at least ``cap_min_orders`` per side;
    ``cap_trim`` is the fraction trimmed (mean) or winsorized (deviation) at each end; the cap is
    the trimmed mean plus ``cap_sigmas`` winsorized standard deviations. ``weight_scale`` is the
    0.3 in λ = 1/(0.3·v_T). ``decimals`` is the dissemination precision the value is rounded
    to, ``interval_s`` the calculation period (CF's Effective Time step).
    """

    index_id: str
    spacing: Decimal
    deviation: Decimal
    ped: Decimal
    ped_reentry: Decimal
    lag_threshold_s: Decimal
    decimals: int = 2
    cap_window: Decimal = Decimal("0.05")
    cap_min_orders: int = 50
    cap_trim: Decimal = Decimal("0.01")
    cap_sigmas: int = 5
    weight_scale: Decimal = Decimal("0.3")
    interval_s: Decimal = Decimal("0.2")

    @property
    def spacing_e8(self) -> int:
        """The spacing in 1e-8 units of the base asset (sizes are ``*_e8``)."""
        return int(self.spacing.scaleb(8))

    @property
    def lag_threshold_ns(self) -> int:
        return int(self.lag_threshold_s.scaleb(9))


def _row(index_id: str, spacing: str, deviation: str, ped: str, decimals: int = 2) -> RtiParams:
    """One table row; the PED re-entry level is always half the PED (CF, Sept 2020)."""
    return RtiParams(
        index_id=index_id,
        spacing=Decimal(spacing),
        deviation=Decimal(deviation),
        ped=Decimal(ped),
        ped_reentry=Decimal(ped) / 2,
        lag_threshold_s=Decimal(10),
        decimals=decimals,
    )


# fmt: off
PARAMS: dict[str, RtiParams] = {
    #     index          spacing s  D        PED
    "BRTI":       _row("BRTI",       "1",     "0.005", "0.05"),
    "ETHUSD_RTI": _row("ETHUSD_RTI", "25",    "0.01",  "0.05"),
    # SOL/XRP: Kalshi settles these at 4 dp; CF's own published precision is not in our sources.
    "SOLUSD_RTI": _row("SOLUSD_RTI", "100",   "0.01",  "0.05", decimals=4),
    "XRPUSD_RTI": _row("XRPUSD_RTI", "10000", "0.01",  "0.10", decimals=4),
}
# fmt: on
"""Index id -> parameters (reference §1.5; lag threshold 10 s for all four since v16.6)."""
