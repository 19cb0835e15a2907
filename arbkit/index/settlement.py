"""Settlement values: the simple average of the 60 one-second index values before a time.

Kalshi's BTC contracts settle on "the simple average of the sixty seconds of CF Benchmarks'
BRTI before" the close, "rounded to the nearest 2 decimal places" (SOL/XRP: 4); the window is
``[t − 60 s, t)`` (``kalshi-api.md``, settlement source). The one-second value of second ``t`` is
the last index value calculated in ``(t − 1 s, t]`` (CF calculates every 200 ms and publishes
the value at the top of each second).

Missing seconds (no value calculated in that second, or None) are left out: the average is over
the seconds present, and the result lists the missing ones so a caller can refuse a window with
too many. A window with no value at all has no settlement value. The arithmetic is exact
(integer ``*_e8`` sum, one rounding).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from arbkit.core.fixed import SPOT_DIGITS, to_decimal
from arbkit.index.rounding import round_e8

SECOND_NS = 10**9
WINDOW_S = 60


def one_second_values(ticks: Iterable[tuple[int, int | None]]) -> dict[int, int]:
    """Per-second values from ``(time_ns, value_e8)`` ticks in time order.

    Keys are whole seconds in ns; each holds the last non-None value calculated in the second
    ending at that key, i.e. ``(key − 1 s, key]``.
    """
    out: dict[int, int] = {}
    for time_ns, value in ticks:
        if value is not None:
            out[-(-time_ns // SECOND_NS) * SECOND_NS] = value
    return out


@dataclass(frozen=True, slots=True)
class Settlement:
    """A settlement average: ``value_e8`` rounded (None if the window was empty), ``count``
    seconds averaged, ``missing`` the whole seconds (ns) of the window without a value."""

    at_ns: int
    value_e8: int | None
    value: Decimal | None
    count: int
    missing: tuple[int, ...]


def settlement_average(
    values: Mapping[int, int], at_ns: int, *, window_s: int = WINDOW_S, decimals: int = 2
) -> Settlement:
    """The average of the one-second values of the ``window_s`` seconds in ``[at − window, at)``.

    ``values`` maps whole seconds (ns, as from `one_second_values`) to ``*_e8`` values;
    ``at_ns`` must be a whole second.
    """
    if at_ns % SECOND_NS:
        msg = f"settlement time {at_ns} ns is not a whole second"
        raise ValueError(msg)
    seconds = range(at_ns - window_s * SECOND_NS, at_ns, SECOND_NS)
    present = [values[s] for s in seconds if s in values]
    missing = tuple(s for s in seconds if s not in values)
    if not present:
        return Settlement(at_ns, None, None, 0, missing)
    value_e8 = round_e8(sum(present), len(present), decimals)
    value = to_decimal(value_e8, SPOT_DIGITS).quantize(Decimal(1).scaleb(-decimals))
    return Settlement(at_ns, value_e8, value, len(present), missing)
