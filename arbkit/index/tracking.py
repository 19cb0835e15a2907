"""Replica minus official: pairing replica ticks with the official index Kalshi relays.

Official ticks are Kalshi ``cfbenchmarks_value`` values (as ``*_e8`` with their time); replica
ticks are our values. Each replica tick is compared with the latest official tick at or before
it, provided that official tick is no older than ``max_age_ns`` (the official feed ticks about
once a second, so a replica tick after a gap in it is not compared with a stale value).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

DEFAULT_MAX_AGE_NS = 2 * 10**9


@dataclass(frozen=True, slots=True)
class Difference:
    """One replica tick against the official value: ``diff_e8 = replica_e8 − official_e8``."""

    time_ns: int
    replica_e8: int
    official_e8: int
    official_ns: int
    diff_e8: int


class OfficialTracker:
    """Holds the latest official tick and turns each replica tick into a `Difference`."""

    def __init__(self, max_age_ns: int = DEFAULT_MAX_AGE_NS) -> None:
        self.max_age_ns = max_age_ns
        self._official: tuple[int, int] | None = None

    def official(self, time_ns: int, value_e8: int) -> None:
        """Record an official tick (older than the one held: ignored)."""
        if self._official is None or time_ns >= self._official[0]:
            self._official = (time_ns, value_e8)

    def latest(self, time_ns: int) -> int | None:
        """The official value usable at ``time_ns`` (None if none, or too old)."""
        held = self._official
        if held is None or not 0 <= time_ns - held[0] <= self.max_age_ns:
            return None
        return held[1]

    def replica(self, time_ns: int, value_e8: int | None) -> Difference | None:
        """The difference for one replica tick, or None without a value or a usable official."""
        official = self.latest(time_ns)
        if value_e8 is None or official is None or self._official is None:
            return None
        return Difference(time_ns, value_e8, official, self._official[0], value_e8 - official)


def differences(
    official: Iterable[tuple[int, int]],
    replica: Iterable[tuple[int, int | None]],
    *,
    max_age_ns: int = DEFAULT_MAX_AGE_NS,
) -> Iterator[Difference]:
    """Differences for time-ordered ``(time_ns, value_e8)`` official and replica ticks (an
    official tick at the same instant as a replica tick counts as before it)."""
    tracker = OfficialTracker(max_age_ns)
    tagged_official = ((t, 0, v) for t, v in official)
    tagged_replica = ((t, 1, v) for t, v in replica)
    for time_ns, kind, value in heapq.merge(tagged_official, tagged_replica, key=_order):
        if kind == 0:
            if value is not None:
                tracker.official(time_ns, value)
        else:
            diff = tracker.replica(time_ns, value)
            if diff is not None:
                yield diff


def _order(item: tuple[int, int, int | None]) -> tuple[int, int]:
    return item[0], item[1]
