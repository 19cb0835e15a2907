"""Faults on demand for the embedded world (``arbkit sim --faults SPEC`` and tests).

A spec is a comma-separated list of ``name=value`` items, each optionally scoped to one
server with ``target.name=value`` (``kalshi``, ``coinbase``, ``kraken``, ...)::

    drop=10s,kalshi.gap=0.01,kraken.corrupt=0.02,stall=60s,stall_for=30s

Values are probabilities per frame (``gap=0.01``) or durations (``drop=10s``, ``500ms``).
Names every server understands: ``drop`` (mean seconds between forced disconnects),
``gap`` (chance a sequenced frame is skipped), ``dup`` (chance a frame is sent twice),
``malformed`` (chance a frame is replaced by invalid JSON), ``stall`` / ``stall_for`` (mean
seconds between stalls with no data and no pings, and their length, `STALL_FOR_S` unless
given), ``slow`` (extra REST latency), ``http429`` / ``http5xx`` (chance a REST request
fails). Venue-specific names: ``corrupt`` (a wrong level in a checksummed frame),
``crossed`` (a crossed book), ``error25`` (Kalshi: mean seconds between subscription buffer
overflows), ``refuse`` (Kalshi: chance a subscribe or update_subscription is refused with
error 17, 18 or 27).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from arbkit.core.config import VENUES
from arbkit.core.errors import ConfigError


class Fault(StrEnum):
    """Every fault name a spec may use."""

    DROP = "drop"
    GAP = "gap"
    DUP = "dup"
    MALFORMED = "malformed"
    STALL = "stall"
    STALL_FOR = "stall_for"
    SLOW = "slow"
    HTTP429 = "http429"
    HTTP5XX = "http5xx"
    CORRUPT = "corrupt"
    CROSSED = "crossed"
    ERROR25 = "error25"
    REFUSE = "refuse"


DURATIONS = frozenset({Fault.DROP, Fault.STALL, Fault.STALL_FOR, Fault.SLOW, Fault.ERROR25})
"""Faults whose value is a duration in seconds (``10s``, ``500ms``, ``1m`` or a bare number);
every other fault is a probability in [0, 1]."""
KNOWN = frozenset(Fault)
TARGETS = ("kalshi", *VENUES)
"""The servers a fault item may be scoped to (``target.name=value``)."""

STALL_FOR_S = 30.0
"""A stall's length unless ``stall_for`` says otherwise, for Kalshi and the spot venues alike:
beyond the Kalshi client's 25 s silence watchdog and the 10 s after which the index drops a
venue as stale; spot feeds with a longer watchdog (Bitstamp, LMAX, Paxos, Bullish) see an aging
book and the stale flag rather than a reconnect."""

_UNITS = (("ms", 0.001), ("s", 1.0), ("m", 60.0))


def _parse_value(name: Fault, text: str, item: str) -> float:
    """The value of one item: a probability in [0, 1] or a non-negative finite duration."""
    if name in DURATIONS:
        scale, number = 1.0, text
        for suffix, unit in _UNITS:
            if text.endswith(suffix):
                scale, number = unit, text[: -len(suffix)]
                break
        what = "a non-negative duration like 10s, 500ms or 1m"
    else:
        scale, number = 1.0, text
        what = "a probability between 0 and 1"
    try:
        value = float(number) * scale
    except ValueError:
        value = math.nan
    ok = math.isfinite(value) and value >= 0 and (name in DURATIONS or value <= 1)
    if not ok:
        msg = f"bad fault value in {item!r}: {name} takes {what}"
        raise ConfigError(msg)
    return value


@dataclass(frozen=True)
class Faults:
    """The resolved faults of one server."""

    values: Mapping[str, float] = field(default_factory=dict)

    def get(self, name: str, default: float = 0.0) -> float:
        return self.values.get(name, default)

    def chance(self, name: str, rng: random.Random) -> bool:
        """True with the configured per-frame probability of ``name``."""
        p = self.values.get(name, 0.0)
        return p > 0.0 and rng.random() < p


@dataclass(frozen=True)
class FaultPlan:
    """Faults for every server of the world, parsed from a spec string."""

    items: Mapping[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        """The plan of a ``--faults`` spec; the one place a spec is validated.

        Raises `ConfigError` naming the bad item and what is valid: an empty item, a name
        not in `Fault`, a target not in `TARGETS`, a probability outside [0, 1], a negative
        or unparsable duration. An empty or blank spec is the empty plan.
        """
        items: dict[tuple[str, str], float] = {}
        if spec is None or not spec.strip():
            return cls(items)
        for raw in spec.split(","):
            part = raw.strip()
            if not part:
                msg = f"empty item in fault spec {spec!r}: separate name=value items by one comma"
                raise ConfigError(msg)
            key, sep, value = part.partition("=")
            target, dot, name = key.strip().rpartition(".")
            if not sep or name not in KNOWN:
                names = ", ".join(sorted(KNOWN))
                msg = (
                    f"bad fault {part!r}: use name=value with name one of {names}, "
                    "optionally scoped as target.name=value"
                )
                raise ConfigError(msg)
            if dot and target not in TARGETS:
                msg = (
                    f"unknown fault target {target!r} in {part!r}: choose from {', '.join(TARGETS)}"
                )
                raise ConfigError(msg)
            items[(target, name)] = _parse_value(Fault(name), value.strip(), part)
        return cls(items)

    def for_target(self, target: str) -> Faults:
        """Faults for one server: un-scoped items, overridden by items scoped to it."""
        values = {name: v for (t, name), v in self.items.items() if not t}
        values.update({name: v for (t, name), v in self.items.items() if t == target})
        return Faults(values)
