"""Token-bucket rate limiter for Kalshi REST reads.

Kalshi's 2026 limits are token buckets per tier (reference/kalshi-api.md §4.6): Basic refills
200 read tokens per second and most requests cost 10 tokens, i.e. about 20 requests/s. The
bucket here starts full with one second's worth of tokens (Kalshi does not publish its burst
size). `TokenBucket.reserve` is sans-I/O; `acquire` only sleeps for the wait it returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from arbkit.core.errors import ConfigError

READ_TOKENS_PER_S: dict[str, float] = {
    "basic": 200.0,
    "advanced": 300.0,
    "expert": 600.0,
    "premier": 1000.0,
    "paragon": 2000.0,
    "prime": 4000.0,
    "prestige": 6000.0,
}
"""Read-token refill rate per Kalshi API tier (2026)."""

REQUEST_COST = 10.0
"""Tokens most REST requests cost."""


class TokenBucket:
    """Refills ``rate`` tokens/s up to ``capacity``; requests take tokens first-come first-served.

    A reservation may drive the balance negative: the caller then waits until the refill has
    paid for it, so concurrent callers queue in the order they reserved.
    """

    def __init__(
        self,
        rate: float = READ_TOKENS_PER_S["basic"],
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            msg = f"token rate must be positive, got {rate}"
            raise ValueError(msg)
        self.rate = rate
        self.capacity = rate if capacity is None else capacity
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()

    @classmethod
    def for_tier(cls, tier: str) -> TokenBucket:
        """The read bucket of a Kalshi tier name (``basic``, ``advanced``, ...)."""
        try:
            return cls(READ_TOKENS_PER_S[tier.lower()])
        except KeyError:
            msg = f"unknown Kalshi API tier {tier!r}: use one of {', '.join(READ_TOKENS_PER_S)}"
            raise ConfigError(msg) from None

    def reserve(self, cost: float = REQUEST_COST) -> float:
        """Take ``cost`` tokens now; return the seconds to wait before using them."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate) - cost
        self._at = now
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self, cost: float = REQUEST_COST) -> None:
        """Wait until ``cost`` tokens are ours."""
        wait = self.reserve(cost)
        if wait > 0:
            await asyncio.sleep(wait)
