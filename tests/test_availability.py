"""Availability under the fault mix of issue 9, at a shorter length than the bench.

A 25 s recording against the embedded world under `bench.bench_availability.FAULTS` must
stay up and honest: every WebSocket stream connected most of the time, REST polled near its
fault-free rate with no market left unpolled for long (except when told to wait by a 429),
the BRTI replica valued, every injected Kalshi gap seen, no row recorded twice. Margins are
a little wider than the two-minute targets (BENCHMARKS.md): a short run on a loaded 2-core
machine has fewer, lumpier events.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arbkit.core.storage import open_session
from arbkit.venues.kalshi.limiter import REQUEST_COST, TokenBucket
from bench.bench_availability import SEQUENCED_SPOT, faulty_run, measure

pytestmark = pytest.mark.timeout(240)

SECONDS = 25.0


async def test_a_recording_under_faults_stays_connected_and_honest(tmp_path: Path) -> None:
    path, injected = await faulty_run(tmp_path, SECONDS)
    polled = open_session(path).frame("kalshi_rest_book").select("market").unique().collect()
    # The fault-free rate: every market once a second, as far as the shared bucket allows
    # (the bench measures it with a fault-free run: 19.6 polls/s for 24 markets).
    fault_free = min(polled.height / 1.0, TokenBucket().rate / REQUEST_COST)
    m = measure(path, injected, fault_free)

    low = {s: share for s, share in m["ws_connected"].items() if share < 0.85}
    assert not low, f"streams connected less than 85 % of the time: {low}"
    assert m["rest_rate_ratio"] >= 0.7, m["rest_rate"]
    worst = max(m["rest_max_gap_s"].items(), key=lambda kv: kv[1])
    assert worst[1] <= 6.0, f"{worst[0]} unpolled for {worst[1]:.1f} s"
    assert m["index_valued"] >= 0.9
    seen, lost = m["gaps_detected"], m["gaps_injected"]
    assert seen["kalshi_ws"] >= lost["kalshi_ws"] > 0  # malformed frames show as gaps too
    # a frame lost just before a forced disconnect is never missed by a book (the next
    # connection starts with a snapshot) and cannot be seen: allow one such per venue
    for venue in SEQUENCED_SPOT:
        assert seen[venue] >= lost.get(venue, 0) - 1, (venue, seen[venue], lost.get(venue))
    assert m["duplicate_rows"] == {"kalshi_book": 0, "kalshi_trades": 0, "spot_book": 0}
    counters = m["counters"]
    assert counters["kalshi_ws"].get("duplicates", 0) > 0  # the dup fault fired and was caught
