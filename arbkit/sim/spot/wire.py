"""Number and time formatting shared by the venue encoders (exact, no floats)."""

from __future__ import annotations

import time

from arbkit.core.fixed import SPOT_DIGITS, SPOT_SCALE


def fixed(value_e8: int, places: int) -> str:
    """``value_e8`` with exactly ``places`` decimals (truncating finer digits: grid values)."""
    whole, frac = divmod(value_e8, SPOT_SCALE)
    if places == 0:
        return str(whole)
    return f"{whole}.{frac // 10 ** (SPOT_DIGITS - places):0{places}d}"


def trim(value_e8: int) -> str:
    """Shortest exact decimal: ``"68923"``, ``"68926.3"``, ``"0.000016"``, ``"0"``."""
    whole, frac = divmod(value_e8, SPOT_SCALE)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:0{SPOT_DIGITS}d}".rstrip("0")


def trim1(value_e8: int) -> str:
    """Shortest exact decimal keeping one decimal place: ``"65206.0"``, ``"0.05292903"``."""
    whole, frac = divmod(value_e8, SPOT_SCALE)
    if not frac:
        return f"{whole}.0"
    return f"{whole}.{frac:0{SPOT_DIGITS}d}".rstrip("0")


def rfc3339(t_ns: int, digits: int = 9, *, strip: bool = False) -> str:
    """UTC RFC 3339 text with ``digits`` fractional digits (trailing zeros dropped if ``strip``)."""
    secs, ns = divmod(t_ns, 1_000_000_000)
    head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    frac = f"{ns:09d}"[:digits]
    if strip:
        frac = frac.rstrip("0")
    return f"{head}.{frac}Z" if frac else f"{head}Z"
