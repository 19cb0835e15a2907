"""Exact fixed-point numbers.

Venues send prices and sizes as decimal strings. arbkit keeps them as Python ints scaled by a
power of ten (never floats), so checksums, fees and settlement averages are exact:

- Kalshi prices: units of $0.0001 (``*_e4`` columns); Kalshi contract counts: 0.01 (``*_e2``).
- Spot prices and sizes, index values: units of 1e-8 (``*_e8`` columns).
"""

from __future__ import annotations

from decimal import Decimal

KALSHI_PRICE_DIGITS = 4
KALSHI_QTY_DIGITS = 2
SPOT_DIGITS = 8

KALSHI_PRICE_SCALE = 10**KALSHI_PRICE_DIGITS
KALSHI_QTY_SCALE = 10**KALSHI_QTY_DIGITS
SPOT_SCALE = 10**SPOT_DIGITS

_ZEROS = "0" * 32
POW10: tuple[int, ...] = tuple(10**i for i in range(19))


def parse_fixed(text: str, digits: int) -> int:
    """Parse a decimal string such as ``"-54.00"`` into an int scaled by ``10**digits``.

    Raises ValueError if the text is not a plain decimal or carries non-zero digits beyond
    ``digits`` places (rounding would silently change a price).
    """
    whole, _, frac = text.partition(".")
    n = len(frac)
    if n > digits:
        frac = frac.rstrip("0")
        n = len(frac)
        if n > digits:
            msg = f"{text!r} has more than {digits} decimal places"
            raise ValueError(msg)
    if not whole or whole == "-" or whole == "+":
        whole += "0"
    return int(whole + frac + _ZEROS[: digits - n])


def parse_number(value: str | int | float | Decimal, digits: int) -> int:
    """Like `parse_fixed` but also takes JSON numbers (ints, floats via their shortest repr)."""
    if isinstance(value, str):
        return parse_fixed(value, digits)
    if isinstance(value, bool):
        msg = f"expected a number, got {value!r}"
        raise ValueError(msg)
    if isinstance(value, int):
        return value * POW10[digits]
    if isinstance(value, float):
        return parse_fixed(format(Decimal(repr(value)), "f"), digits)
    return parse_fixed(format(value, "f"), digits)


def format_fixed(value: int, digits: int, *, trim: bool = False) -> str:
    """Format a scaled int back to a decimal string with ``digits`` places (or trimmed)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**digits)
    if digits == 0:
        return f"{sign}{whole}"
    text = f"{sign}{whole}.{frac:0{digits}d}"
    if trim:
        text = text.rstrip("0").rstrip(".")
    return text


def to_decimal(value: int, digits: int) -> Decimal:
    """The exact Decimal of a scaled int."""
    return Decimal(value).scaleb(-digits)
