"""Rounding exact index values to their published precision."""

from __future__ import annotations

from arbkit.core.fixed import SPOT_DIGITS


def round_e8(num: int, den: int, decimals: int) -> int:
    """The exact ratio ``num / den`` (in 1e-8 units) rounded to ``decimals`` places, in 1e-8 units.

    Halves round away from zero ("to the nearest 2 decimal places", as Kalshi's settlement rules
    say; neither CF nor Kalshi names a tie rule, and ties do occur: a 60-value average of cent
    prints ends in exactly half a cent once in 60 windows).
    """
    if den <= 0:
        msg = f"denominator must be positive, got {den}"
        raise ValueError(msg)
    if not 0 <= decimals <= SPOT_DIGITS:
        msg = f"decimals must be 0..{SPOT_DIGITS}, got {decimals}"
        raise ValueError(msg)
    unit: int = 10 ** (SPOT_DIGITS - decimals)
    q, r = divmod(abs(num), den * unit)
    if 2 * r >= den * unit:
        q += 1
    return q * unit if num >= 0 else -q * unit
