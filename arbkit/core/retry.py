"""Reconnect backoff shared by every transport: capped exponential delay with jitter.

The schedule starts at 1 s and doubles up to 30 s; a connection that stayed healthy for a
minute resets it. Jitter spreads reconnects so many clients do not hammer a venue in step.
It never gives up: the caller decides when it no longer wants data.
"""

from __future__ import annotations

import random


class Backoff:
    """Sans-I/O backoff: ask `delay()` after a failure, tell it `connected()` on success."""

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 30.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.2,
        healthy_after: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.healthy_after = healthy_after
        self._rng = rng or random.Random()
        self._next = initial
        self._connected_at: float | None = None

    def connected(self, now: float) -> None:
        """A connection was established at monotonic time ``now``."""
        self._connected_at = now

    def delay(self, now: float) -> float:
        """Seconds to wait before the next attempt, after a failure or drop at ``now``."""
        if self._connected_at is not None and now - self._connected_at >= self.healthy_after:
            self._next = self.initial
        self._connected_at = None
        base = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return base * (1.0 + self.jitter * (2.0 * self._rng.random() - 1.0))
