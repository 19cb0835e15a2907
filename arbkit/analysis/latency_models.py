"""Latency models of the backtest: how long from signal to order leaving, and on to Kalshi.

Two parts, each a `LatencyModel`: the decision latency (signal -> order leaves) and the order
latency (order leaves -> it reaches Kalshi). A model is constant, or drawn from a recorded
distribution (a session's REST round trips, or its WebSocket delays ``recv_ns − exch_ns``),
scaled and offset. Draws are seeded: the same model, seed and count give the same times, so
two thresholds at one latency see the same delays signal by signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import polars as pl

from arbkit.core.storage import Session

MS_NS = 1_000_000
I64 = npt.NDArray[np.int64]


class Distribution(StrEnum):
    """Where a drawn latency comes from."""

    CONSTANT = "constant"
    REST_RTT = "rest_rtt"
    """The session's REST order-book round trips (``kalshi_rest_book`` recv_ns − sent_ns)."""
    REST_ONE_WAY = "rest_one_way"
    """Half of each REST round trip (one leg of it: an order travelling to Kalshi)."""
    WS_DELAY = "ws_delay"
    """The session's Kalshi WebSocket delays (``kalshi_book`` recv_ns − exch_ns, where sent)."""


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """``offset_ms + scale × X`` where X is 0 (`Distribution.CONSTANT`) or a draw from the
    session's recorded distribution; never below 0."""

    distribution: Distribution = Distribution.CONSTANT
    offset_ms: float = 0.0
    scale: float = 1.0

    def draw(self, samples_ns: I64 | None, n: int, rng: np.random.Generator) -> I64:
        """``n`` latencies in ns (``samples_ns``: the recorded distribution, unless constant)."""
        offset = round(self.offset_ms * MS_NS)
        if self.distribution is Distribution.CONSTANT:
            return np.full(n, max(offset, 0), dtype=np.int64)
        if samples_ns is None or len(samples_ns) == 0:
            msg = (
                f"the session records no {self.distribution.value} samples to draw latencies "
                "from; use a constant latency model"
            )
            raise ValueError(msg)
        drawn = samples_ns[rng.integers(0, len(samples_ns), size=n)]
        out = np.rint(drawn * self.scale).astype(np.int64) + offset
        clipped: I64 = np.maximum(out, 0)
        return clipped


@dataclass(frozen=True, slots=True)
class Latency:
    """Both parts of one setting's latency."""

    decision: LatencyModel = LatencyModel()
    order: LatencyModel = LatencyModel()

    @classmethod
    def constant_ms(cls, ms: float) -> Latency:
        """All of ``ms`` in the order leg (the decision taken at once)."""
        return cls(order=LatencyModel(offset_ms=ms))

    def with_offset_ms(self, ms: float) -> Latency:
        """This latency with ``ms`` more on the order leg (a sweep's ``latency_ms`` value)."""
        o = self.order
        return Latency(self.decision, LatencyModel(o.distribution, o.offset_ms + ms, o.scale))

    @property
    def distributions(self) -> set[Distribution]:
        return {self.decision.distribution, self.order.distribution} - {Distribution.CONSTANT}


def recorded_samples(session: Session, distribution: Distribution) -> I64:
    """The session's recorded latencies (ns) of ``distribution``."""
    if distribution is Distribution.WS_DELAY:
        frame = (
            session.frame("kalshi_book")
            .filter(pl.col("exch_ns").is_not_null())
            .select((pl.col("recv_ns") - pl.col("exch_ns")).alias("d"))
        )
    else:
        rtt = pl.col("recv_ns") - pl.col("sent_ns")
        if distribution is Distribution.REST_ONE_WAY:
            rtt = rtt // 2
        frame = (
            session.frame("kalshi_rest_book")
            .filter(pl.col("status") == 200)
            .group_by("poll_id")
            .agg(rtt.first().alias("d"))
        )
    d = frame.filter(pl.col("d") >= 0).sort("d").collect()["d"]
    return d.cast(pl.Int64).to_numpy()


def draw_latencies(
    latency: Latency, samples: Mapping[Distribution, I64], n: int, seed: Sequence[int]
) -> tuple[I64, I64]:
    """Decision and order latencies (ns) for ``n`` signals, seeded (``seed``: non-negative
    ints, e.g. the sweep's seed, the session and the setting)."""
    rng = np.random.default_rng(list(seed))
    dec = latency.decision.draw(samples.get(latency.decision.distribution), n, rng)
    order = latency.order.draw(samples.get(latency.order.distribution), n, rng)
    return dec, order
