"""The I/O-free index engine: book views and a time in, one replica tick (and its rows) out.

`IndexEngine` is the per-tick part of the live replica with no sockets, tasks or clock: given
every venue's `BookView` and the calculation time it computes the replica with one stateful
`RtiCalculator` (the potentially-erroneous state carries from tick to tick, as CF's does) and
the two proxies, pairs it with the latest official value, and keeps a ring of the replica's
own ticks for one-second and settlement values. `arbkit.index.live.LiveIndex` drives it from
live feeds on a timer; a replay or backtest drives the same object from replayed books.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from arbkit.core.book import BookView
from arbkit.core.events import IndexRow
from arbkit.index.params import PARAMS, RtiParams
from arbkit.index.proxy import ProxyResult, median_mid, vw_mid
from arbkit.index.report import index_rows
from arbkit.index.rti import RtiCalculator, RtiResult
from arbkit.index.settlement import Settlement, one_second_values, settlement_average
from arbkit.index.tracking import DEFAULT_MAX_AGE_NS, OfficialTracker


@dataclass(frozen=True, slots=True)
class LiveTick:
    """One calculation of the replica: the result, the proxies and the official value held
    at that moment (None without official ticks, or when the last one is too old)."""

    time_ns: int
    result: RtiResult
    proxies: tuple[ProxyResult, ...]
    official_e8: int | None

    @property
    def diff_e8(self) -> int | None:
        """Replica − official (``*_e8``), None unless both exist."""
        value = self.result.value_e8
        if value is None or self.official_e8 is None:
            return None
        return value - self.official_e8


class IndexEngine:
    """The replica's per-tick computation and its retained history, fed books and times.

    ``interval_ns`` is the calculation step (it sizes the ``history_s`` ring);
    ``proxy_venues`` limits the volume-weighted mid to those venues (default: all).
    """

    def __init__(
        self,
        params: RtiParams = PARAMS["BRTI"],
        *,
        interval_ns: int | None = None,
        history_s: float = 300.0,
        proxy_venues: Sequence[str] | None = None,
        official_max_age_ns: int = DEFAULT_MAX_AGE_NS,
    ) -> None:
        step = int(params.interval_s * 10**9) if interval_ns is None else interval_ns
        self.params = params
        self.proxy_venues = None if proxy_venues is None else frozenset(proxy_venues)
        self.calculator = RtiCalculator(params)
        self.tracker = OfficialTracker(official_max_age_ns)
        self.latest: LiveTick | None = None
        self._history: deque[tuple[int, int | None]] = deque(
            maxlen=max(1, int(history_s * 1e9) // step)
        )

    def tick(
        self, books: Sequence[BookView], time_ns: int, *, grid_ns: int | None = None
    ) -> tuple[LiveTick, list[IndexRow]]:
        """One calculation at ``time_ns`` from ``books``: the tick and its ``index`` rows.

        ``grid_ns`` is the grid point the calculation was scheduled for: the one-second
        values (settlement) file it there, not a few ms later in the next second.
        """
        params = self.params
        result = self.calculator.calculate(books, time_ns)
        proxies = (
            median_mid(books, time_ns, params=params),
            vw_mid(books, time_ns, params=params, venues=self.proxy_venues),
        )
        official = self.tracker.latest(time_ns)
        tick = LiveTick(time_ns, result, proxies, official)
        self.latest = tick
        self._history.append((time_ns if grid_ns is None else grid_ns, result.value_e8))
        return tick, index_rows(result, proxies, official_e8=official)

    def official(self, time_ns: int, value_e8: int) -> None:
        """An official index tick (Kalshi ``cfbenchmarks_value``) at ``time_ns``; later ticks
        carry it as ``official_e8`` while it is no older than the tracker's maximum age."""
        self.tracker.official(time_ns, value_e8)

    def history(self) -> list[tuple[int, int | None]]:
        """The retained ``(time_ns, value_e8)`` replica ticks, oldest first."""
        return list(self._history)

    def one_second_values(self) -> dict[int, int]:
        """Whole second (ns) -> the replica's one-second value (last value in the second
        ending there), over the retained history."""
        return one_second_values(self._history)

    def settlement(self, at_ns: int, *, window_s: int = 60) -> Settlement:
        """Kalshi's settlement average of the replica's one-second values before ``at_ns``."""
        return settlement_average(
            self.one_second_values(), at_ns, window_s=window_s, decimals=self.params.decimals
        )
