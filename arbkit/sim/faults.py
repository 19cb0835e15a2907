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

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from arbkit.core.errors import ConfigError

KNOWN = frozenset(
    {
        "drop",
        "gap",
        "dup",
        "malformed",
        "stall",
        "stall_for",
        "slow",
        "http429",
        "http5xx",
        "corrupt",
        "crossed",
        "error25",
        "refuse",
    }
)

STALL_FOR_S = 30.0
"""A stall's length unless ``stall_for`` says otherwise, for Kalshi and the spot venues alike:
beyond the Kalshi client's 25 s silence watchdog and the 10 s after which the index drops a
venue as stale; spot feeds with a longer watchdog (Bitstamp, LMAX, Paxos, Bullish) see an aging
book and the stale flag rather than a reconnect."""


def _parse_value(text: str) -> float:
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


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
        items: dict[tuple[str, str], float] = {}
        for raw in (spec or "").split(","):
            part = raw.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            target, _, name = key.strip().rpartition(".")
            if not sep or name not in KNOWN:
                msg = (
                    f"bad fault {part!r}: use name=value with name one of {sorted(KNOWN)}, "
                    "optionally scoped as target.name=value"
                )
                raise ConfigError(msg)
            try:
                items[(target, name)] = _parse_value(value.strip())
            except ValueError:
                msg = f"bad fault value in {part!r}: use a probability or a duration like 10s"
                raise ConfigError(msg) from None
        return cls(items)

    def for_target(self, target: str) -> Faults:
        """Faults for one server: un-scoped items, overridden by items scoped to it."""
        values = {name: v for (t, name), v in self.items.items() if not t}
        values.update({name: v for (t, name), v in self.items.items() if t == target})
        return Faults(values)
