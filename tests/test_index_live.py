"""The live BRTI replica against the embedded world: real feeds on loopback, real runner.

What is compared. The world computes its reference BRTI from each venue's book as its public
feed shows it (published depth; LMAX's book as of its last one-a-second publication), as CF
does; the replica rebuilds those books from the feeds over loopback. The world runs with its
default settings.

The matching rule. The world steps every 50 ms and here computes its reference at every step
(``index_interval_ms=50``), so every state the feeds can hold has a reference value. The feeds
receive a step's frames a little after the step (transport and event-loop delay), so a replica
tick at time t is compared with the reference values computed in ``[t − 300 ms, t]`` and the
closest counts (``WINDOW_NS``). Assertions: at least 95 % of the ticks within $0.01 and every
tick within ``BOUND_E8`` ($5: more than the reference moves in the 300 ms window here, so only
a tick whose books were more than 300 ms late can come near it).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest

from arbkit.core.config import Endpoint
from arbkit.core.events import IndexRow, KalshiIndexRow
from arbkit.core.sink import MemorySink
from arbkit.index.live import LiveIndex, LiveTick, OfficialTap
from arbkit.index.rti import RtiResult
from arbkit.index.settlement import SECOND_NS
from arbkit.sim.world import World

CENT_E8 = 1_000_000
WINDOW_NS = 300_000_000
BOUND_E8 = 500 * 10**6  # $5
ALL = ("bitstamp", "bullish", "coinbase", "cryptocom", "gemini", "kraken", "lmax", "paxos")


def tracking_world(on_index: Callable[[int, RtiResult], None] | None = None) -> World:
    """The world at its defaults, computing its reference at every step."""
    options: dict[str, Any] = {"index_interval_ms": 50, "on_index": on_index}
    return World(seed=11, spot_options=options)


@asynccontextmanager
async def live_on(
    world: World, sink: MemorySink
) -> AsyncIterator[tuple[LiveIndex, list[LiveTick]]]:
    """A `LiveIndex` on the world, ready (every venue snapshotted)."""
    ticks: list[LiveTick] = []
    async with LiveIndex(world.endpoints.venues, sink, on_tick=ticks.append) as live:
        assert await live.wait_ready(10) == []
        await live.next_tick()
        ticks.clear()
        yield live, ticks


def errors_e8(world: World, ticks: list[LiveTick]) -> list[int]:
    """|replica − reference| per tick under the matching rule (closest reference value
    computed in ``[t − WINDOW_NS, t]``)."""
    series = world.spot.reference_series()
    times = [t for t, _ in series]
    out = []
    for tick in ticks:
        value = tick.result.value_e8
        assert value is not None, tick.result.note
        lo = bisect.bisect_left(times, tick.time_ns - WINDOW_NS)
        hi = bisect.bisect_right(times, tick.time_ns)
        refs = [v for _, v in series[lo:hi] if v is not None]
        assert refs, f"no reference value in the window of the tick at {tick.time_ns}"
        out.append(min(abs(value - r) for r in refs))
    return out


def assert_tracks(world: World, ticks: list[LiveTick], what: str) -> list[int]:
    errors = errors_e8(world, ticks)
    within = sum(e <= CENT_E8 for e in errors)
    assert within >= 0.95 * len(errors), f"{what}: {within}/{len(errors)} ticks within $0.01"
    assert max(errors) <= BOUND_E8, f"{what}: worst tick ${max(errors) / 1e8}"
    return errors


async def test_healthy_venues_track_the_reference_within_a_cent() -> None:
    sink = MemorySink()
    tap: list[OfficialTap] = []

    def relay(t_ns: int, result: RtiResult) -> None:
        """Kalshi's ``cfbenchmarks_value`` stand-in: the world's reference, as Kalshi rows."""
        if tap and result.value_e8 is not None:
            row = KalshiIndexRow(t_ns, t_ns, "BRTI", t_ns, result.value_e8, None, None, None, 1, 1)
            tap[0].write(row)

    async with tracking_world(relay) as w, live_on(w, sink) as (live, ticks):
        tap.append(OfficialTap(MemorySink(), live))
        await asyncio.sleep(3.5)
        ticks = list(ticks)
    assert len(ticks) >= 10  # ~17 at 5 Hz; fewer only if the loop is starved
    assert_tracks(w, ticks, "healthy")
    assert all(t.result.venues_used == ALL for t in ticks)
    assert all(t.time_ns > p.time_ns for p, t in itertools.pairwise(ticks))
    # replica − official per tick: the official held is the world's latest reference at t.
    series = w.spot.reference_series()
    times = [t for t, _ in series]
    for tick in ticks:
        official = series[bisect.bisect_right(times, tick.time_ns) - 1][1]
        assert tick.official_e8 == official
        assert tick.diff_e8 == tick.result.value_e8 - official  # type: ignore[operator]
    rows = [r for r in sink.rows["index"] if isinstance(r, IndexRow)]
    replica_rows = {r.recv_ns: r for r in rows if r.method == "brti_replica"}
    for tick in ticks:
        row = replica_rows[tick.time_ns]
        assert (row.value_e8, row.official_e8) == (tick.result.value_e8, tick.official_e8)
        assert row.venues_used == ",".join(ALL)
        assert orjson.loads(row.excluded) == {}
        assert row.utilized_depth is not None
        assert row.utilized_depth >= 1
    methods = {r.method for r in rows}
    assert methods == {"brti_replica", "median_mid", "vw_mid"}
    # One-second values: the last value of each second; the settlement averages them.
    seconds = live.one_second_values()
    last = max(seconds)
    for second, value in seconds.items():
        assert second % SECOND_NS == 0
        inside = [v for t, v in live.history() if second - SECOND_NS < t <= second]
        assert value == inside[-1]
    settled = live.settlement(last + SECOND_NS, window_s=2)  # the seconds [last − 1 s, last]
    assert settled.count == 2
    assert settled.value_e8 is not None
    assert abs(2 * settled.value_e8 - seconds[last] - seconds[last - SECOND_NS]) <= 2 * CENT_E8


async def test_a_stalled_venue_drops_out_after_the_lag_threshold() -> None:
    """Bitstamp stops sending anything for 11.5 s (its feed reconnects only after 45 s of
    silence, so the book just ages): it must be excluded as stale from 10 s after its last
    frame until it publishes again, while the replica keeps tracking the reference (which
    drops it by the same rule)."""
    async with tracking_world() as w, live_on(w, MemorySink()) as (_, ticks):
        await asyncio.sleep(0.6)
        stalled_at = w.spot.now_ns()
        w.spot.inject("bitstamp", "stall", seconds=11.5)
        await asyncio.sleep(12.5)
        ticks = list(ticks)
    out = [t for t in ticks if "bitstamp" in t.result.excluded]
    assert out, "bitstamp was never excluded"
    first, last = out[0].time_ns - stalled_at, out[-1].time_ns - stalled_at
    # stale once its last frame is 10 s old (frames ~0.1 s apart, ticks 0.2 s apart; slack
    # for a loaded machine), back as soon as it publishes again after the 11.5 s stall
    assert 9.5e9 <= first <= 11.0e9, f"excluded {first / 1e9:.2f} s after the stall began"
    assert 11.0e9 <= last <= 12.5e9, f"still excluded {last / 1e9:.2f} s after the stall began"
    assert all(t.result.excluded["bitstamp"].startswith("stale: ") for t in out)
    assert all(len(t.result.venues_used) == 7 for t in out)
    assert ticks[-1].result.venues_used == ALL
    assert_tracks(w, ticks, "bitstamp stalled")


async def test_an_erroneous_venue_is_excluded_and_readmitted_inside_half_the_ped() -> None:
    """Gemini quotes 10 % high (excluded: PED 5 %), then 3 % high (still out: re-admission
    needs < 2.5 %), then true again (back in); the replica tracks the reference throughout."""
    async with tracking_world() as w, live_on(w, MemorySink()) as (live, ticks):
        phases = []
        for offset in (0.10, 0.03, 0.0):
            w.spot.set_offset("gemini", offset)
            await asyncio.sleep(1.0)
            phases.append(live.latest)
        ticks = list(ticks)
    high, near, back = (p.result for p in phases if p is not None)
    first = next(t.result.excluded["gemini"] for t in ticks if "gemini" in t.result.excluded)
    assert first.startswith("potentially erroneous: mid ")
    assert first.endswith("% from the median of the other venues (PED 5.0%)")
    assert 9.5 <= deviation_pct(first) <= 10.5
    assert high.excluded["gemini"].startswith("potentially erroneous: mid still ")
    assert 9.5 <= deviation_pct(high.excluded["gemini"]) <= 10.5
    assert near.excluded["gemini"].endswith("(re-admitted below 2.5%)")
    assert 2.6 <= deviation_pct(near.excluded["gemini"]) <= 3.4
    assert len(high.venues_used) == len(near.venues_used) == 7
    assert back.venues_used == ALL
    assert_tracks(w, ticks, "gemini erroneous")


def deviation_pct(reason: str) -> float:
    """The deviation a potentially-erroneous reason states, in percent."""
    found = re.search(r"mid (?:still )?([0-9.]+)% from", reason)
    assert found, reason
    return float(found.group(1))


def test_memory_is_bounded_and_ticks_without_books_say_why() -> None:
    """Unstarted feeds (no books): every venue is excluded with a reason, no value, and the
    history keeps only ``history_s`` of ticks."""
    endpoints = {v: Endpoint(f"ws://127.0.0.1:9/{v}", "http://127.0.0.1:9") for v in ALL}
    sink = MemorySink()
    live = LiveIndex(endpoints, sink, venues=["coinbase", "kraken"], history_s=1.0)
    t0 = 1_800_000_000 * SECOND_NS
    for i in range(12):
        tick = live.compute(t0 + i * 200_000_000)
    assert tick.result.value_e8 is None
    assert tick.result.excluded == {"coinbase": "empty book", "kraken": "empty book"}
    assert len(live.history()) == 5
    assert live.missing() == ["coinbase", "kraken"]
    assert len(sink.rows["index"]) == 36


def test_official_tap_passes_rows_on_and_feeds_the_tracker() -> None:
    endpoints = {"coinbase": Endpoint("ws://127.0.0.1:9", "http://127.0.0.1:9")}
    live = LiveIndex(endpoints, MemorySink())
    inner = MemorySink()
    tap = OfficialTap(inner, live)
    t = 1_800_000_000 * SECOND_NS
    tap.write(KalshiIndexRow(t + 5, None, "ETHUSD_RTI", t, 3 * 10**11, None, None, None, 1, 1))
    assert live.tracker.latest(t + 10) is None  # another index: passed on, not used
    tap.write(KalshiIndexRow(t + 5, None, "BRTI", None, 10**13, None, None, None, 1, 2))
    assert live.compute(t + 10).official_e8 == 10**13  # no CF time: the receive time counts
    assert len(inner.rows["kalshi_cf_index"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"venues": ["coinbase", "nowhere"]}, "no endpoint configured for venue(s) nowhere"),
        ({"venues": []}, "at least one venue"),
        ({"interval_s": 0}, "interval must be positive"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs: dict[str, Any], message: str) -> None:
    endpoints = {"coinbase": Endpoint("ws://127.0.0.1:9", "http://127.0.0.1:9")}
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        LiveIndex(endpoints, MemorySink(), **kwargs)
