"""Reconnect backoff shared by every transport: capped exponential delay with jitter.

The schedule starts at 0.1 s and doubles up to 30 s while attempts keep failing. It resets
as soon as a connection has *delivered good data* (`healthy`: its snapshot, or a few seconds
of frames, as the transport decides), so a link that drops every few seconds after working
reconnects at once each time, while one that is refused or fails before delivering anything
keeps escalating. This is how websockets' ``connect()`` iterator (backoff only across failed
attempts; a connection that opened resets it) and tardis-node's realtime feeds (the retry
count is zeroed by the first correct message) decide it. Jitter spreads reconnects so many
clients do not hammer a venue in step. It never gives up: the caller decides when it no
longer wants data.
"""

from __future__ import annotations

import random


class Backoff:
    """Sans-I/O backoff: ask `delay()` after a failure or drop; tell it `healthy()` once a
    connection delivered good data.

    ``healthy_after`` is how many seconds of frames a transport may take as good data when
    the protocol itself cannot say (see `arbkit.venues.runner`).
    """

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 30.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.2,
        healthy_after: float = 3.0,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.healthy_after = healthy_after
        self._rng = rng or random.Random()
        self._next = initial

    def healthy(self) -> None:
        """The current connection delivered good data: the next failure starts over."""
        self._next = self.initial

    def delay(self, now: float) -> float:
        """Seconds to wait before the next attempt, after a failure or drop at ``now``."""
        base = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return base * (1.0 + self.jitter * (2.0 * self._rng.random() - 1.0))
