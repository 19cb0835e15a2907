"""Availability under faults (issue 9): a recording against the embedded world, measured.

Records ``SECONDS`` against `arbkit.sim.World` under `FAULTS`, and once without faults (the
reference the REST poll rate is a ratio to), then measures from the session's own tables:

- per WebSocket stream, the share of the time it was connected (``connect`` to
  ``disconnect`` in its raw frames, over the time from its first attempt to the end);
- REST polls per second against the fault-free run's, and per market the longest time
  between two polls, leaving out the waits after a 429 (told to wait);
- the share of BRTI replica ticks (table ``index``) that have a value;
- per sequenced stream, the injected gaps (the world's count) against the frames the
  client's ``gap`` events say were lost;
- duplicate rows (a Kalshi delta ``(conn, sid, seq)``, a trade id, a spot row of a sequenced
  venue ``(conn, seq, side, price)`` recorded twice).

The spot world does not count what it injects, so `count_spot_faults` wraps its
per-frame fault draw for the run (bench/test instrumentation only; the world is untouched).
``python -m bench availability`` runs it; ``python bench/bench_availability.py [seconds]``
prints the measurements as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from arbkit.core.storage import Session, open_session
from arbkit.session.environment import environment
from arbkit.session.record import RecordConfig, record
from arbkit.sim.spot.server import Conn

FAULTS = "drop=5s,gap=0.01,dup=0.01,malformed=0.001,http429=0.05,http5xx=0.02,kraken.corrupt=0.01"
SECONDS = 120.0
TARGETS = {
    "ws_connected": 0.90,
    "rest_rate_ratio": 0.75,
    "rest_max_gap_s": 5.0,
    "index_valued": 0.95,
    "gaps_detected": 1.0,
    "duplicate_rows": 0,
}
SEQUENCED_SPOT = ("coinbase", "cryptocom", "gemini", "bullish")
"""Spot venues whose frames carry sequence numbers, so a lost frame is a countable gap."""
GAP_NOTES = {
    "kalshi_ws": "frames spanned by seq gaps (malformed frames are lost too)",
    "coinbase": "gap events",
    "cryptocom": "gap events",
    "gemini": "gap events",
    "bullish": "gap events",
    "kraken.corrupt": "checksum failures (lost updates fail it too)",
    "paxos": "divergences found by the REST check (lost updates also heal)",
}


# --- the recording ---------------------------------------------------------------------------


async def record_in_world(
    out: Path, seconds: float, faults: str, seed: int = 1
) -> tuple[Path, dict[str, int]]:
    """Record ``seconds`` against a fresh embedded world under ``faults``: the session path
    and the Kalshi world's counters (what it injected)."""
    async with environment("sim", seed=seed, faults=faults) as env:
        config = RecordConfig(seconds=seconds, out=out)
        path = await record(config, env)
        assert env.world is not None
        return path, dict(env.world.kalshi.counters)


@contextlib.contextmanager
def count_spot_faults() -> Iterator[Counter[tuple[str, str]]]:
    """Count the spot world's frame faults as they fire, per ``(venue, fault)``."""
    counts: Counter[tuple[str, str]] = Counter()
    original = Conn.fault

    def counting(self: Conn, name: str) -> bool:
        fired = original(self, name)
        if fired:
            counts[self.server.name, name] += 1
        return fired

    Conn.fault = counting  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        Conn.fault = original  # type: ignore[method-assign]


async def faulty_run(out: Path, seconds: float) -> tuple[Path, dict[str, int]]:
    """The fault run and what the world injected: lost frames per stream (``kalshi_ws`` and
    every spot venue), and Kraken's corrupted frames as ``kraken.corrupt``."""
    with count_spot_faults() as counts:
        path, kalshi = await record_in_world(out, seconds, FAULTS)
    injected = {venue: n for (venue, fault), n in counts.items() if fault == "gap"}
    injected["kraken.corrupt"] = counts["kraken", "corrupt"]
    injected["kalshi_ws"] = kalshi.get("gaps", 0)
    return path, injected


# --- measurements ---------------------------------------------------------------------------


def ws_connected_share(session: Session) -> dict[str, float]:
    """Per WebSocket stream: connected time over the time since its first attempt."""
    streams = [t.removeprefix("raw/") for t in session.tables if t.startswith("raw/")]
    streams = [s for s in streams if s != "kalshi_rest"]
    frames = {s: session.raw(s).select("recv_ns", "conn_id", "kind").collect() for s in streams}
    end = max(int(f["recv_ns"].max() or 0) for f in frames.values())  # type: ignore[arg-type]
    shares: dict[str, float] = {}
    for stream, f in frames.items():
        f = f.sort("recv_ns")
        start = int(f["recv_ns"][0])
        up = 0
        opened: int | None = None
        for t, kind in zip(f["recv_ns"].to_list(), f["kind"].to_list(), strict=True):
            if kind == "connect":
                opened = t
            elif kind == "disconnect" and opened is not None:
                up += t - opened
                opened = None
        if opened is not None:
            up += end - opened
        shares[stream] = up / (end - start) if end > start else 0.0
    return shares


def rest_polls(session: Session) -> pl.DataFrame:
    """One row per REST poll: market, intended, sent and received times, status."""
    return (
        session.frame("kalshi_rest_book")
        .group_by("poll_id")
        .agg(pl.first("market", "intended_ns", "sent_ns", "recv_ns", "status"))
        .sort("sent_ns")
        .collect()
    )


def rest_rate(polls: pl.DataFrame) -> float:
    """Polls per second over the span of the polls."""
    if polls.height < 2:
        return 0.0
    span = (int(polls["sent_ns"].max()) - int(polls["sent_ns"].min())) / 1e9  # type: ignore[arg-type]
    return polls.height / span if span > 0 else 0.0


def rest_max_gaps(polls: pl.DataFrame) -> dict[str, float]:
    """Per market, the longest time between two polls, except waits after a 429."""
    gaps: dict[str, float] = {}
    for (market,), group in polls.group_by("market"):
        sent = group["sent_ns"].to_list()
        status = group["status"].to_list()
        waits = [(b - a) / 1e9 for a, b, s in zip(sent, sent[1:], status, strict=False) if s != 429]
        gaps[str(market)] = max(waits, default=0.0)
    return gaps


def index_valued_share(session: Session) -> float:
    index = session.frame("index").select("value_e8").collect()
    return index["value_e8"].is_not_null().mean() if index.height else 0.0  # type: ignore[return-value]


def detected_gaps(session: Session) -> dict[str, int]:
    """What the client saw of lost frames, per stream: for Kalshi the frames its ``seq`` gaps
    span (``got - expected``: every sequenced frame is numbered); for the sequenced spot
    venues their ``gap`` events (a venue's numbers need not count frames); for Kraken its
    ``checksum`` failures (``kraken.corrupt``); for Paxos its ``divergence`` events (a lost
    absolute update heals when its level next changes, so fewer is not a miss)."""
    events = session.frame("events").collect()
    gaps = events.filter(pl.col("kind") == "gap")
    kalshi = gaps.filter((pl.col("stream") == "kalshi_ws") & pl.col("expected").is_not_null())
    found = {"kalshi_ws": int((kalshi["got"] - kalshi["expected"]).sum())}
    for venue in SEQUENCED_SPOT:
        found[venue] = gaps.filter(pl.col("stream") == venue).height
    found["kraken.corrupt"] = events.filter(
        (pl.col("stream") == "kraken") & (pl.col("kind") == "checksum")
    ).height
    found["paxos"] = events.filter(pl.col("kind") == "divergence").height
    return found


def duplicate_rows(session: Session) -> dict[str, int]:
    """Rows recorded twice, per table."""
    book = session.frame("kalshi_book").filter(~pl.col("is_snapshot")).collect()
    trades = session.frame("kalshi_trades").filter(pl.col("trade_id") != "").collect()
    spot = (
        session.frame("spot_book")
        .filter(
            ~pl.col("is_snapshot")
            & pl.col("seq").is_not_null()
            & pl.col("venue").is_in(SEQUENCED_SPOT)
        )
        .collect()
    )
    keys = {
        "kalshi_book": (book, ["conn_id", "sid", "seq"]),
        "kalshi_trades": (trades, ["trade_id"]),
        "spot_book": (spot, ["venue", "conn_id", "seq", "side", "price_e8"]),
    }
    return {name: frame.height - frame.unique(cols).height for name, (frame, cols) in keys.items()}


def measure(path: Path, injected: dict[str, int], reference_rate: float) -> dict[str, Any]:
    """Every figure of the module docstring for one session."""
    session = open_session(path)
    polls = rest_polls(session)
    detected = detected_gaps(session)
    return {
        "ws_connected": ws_connected_share(session),
        "rest_rate": rest_rate(polls),
        "rest_rate_reference": reference_rate,
        "rest_rate_ratio": rest_rate(polls) / reference_rate if reference_rate else 0.0,
        "rest_max_gap_s": rest_max_gaps(polls),
        "rest_late_p99_s": _late_p99(polls),
        "index_valued": index_valued_share(session),
        "gaps_injected": injected,
        "gaps_detected": {s: detected[s] for s in injected if s in detected},
        "duplicate_rows": duplicate_rows(session),
        "counters": session.summary["counters"],
    }


def _late_p99(polls: pl.DataFrame) -> float:
    """99th percentile of how late a poll left against its slot (coordinated omission)."""
    late = (polls["sent_ns"] - polls["intended_ns"]).drop_nulls() / 1e9
    return float(late.quantile(0.99) or 0.0) if late.len() else 0.0


async def measure_runs(seconds: float, workdir: Path) -> dict[str, Any]:
    """The fault-free reference run, then the fault run, measured."""
    clean, _ = await record_in_world(workdir / "clean", seconds, "")
    reference = rest_rate(rest_polls(open_session(clean)))
    path, injected = await faulty_run(workdir / "faults", seconds)
    return measure(path, injected, reference)


# --- bench entry points ---------------------------------------------------------------------


def run(seconds: float = SECONDS) -> list[dict[str, Any]]:
    """The bench rows (``python -m bench availability``)."""
    with tempfile.TemporaryDirectory(prefix="arbkit-avail-") as tmp:
        started = time.monotonic()
        m = asyncio.run(measure_runs(seconds, Path(tmp)))
        took = time.monotonic() - started
    rows: list[dict[str, Any]] = []
    for stream, share in sorted(m["ws_connected"].items()):
        rows.append(_row(f"WS connected: {stream}", 100 * share, "%", ">= 90 %"))
    rows.append(
        _row(
            "REST poll rate vs fault-free",
            100 * m["rest_rate_ratio"],
            "%",
            ">= 75 %",
            f"{m['rest_rate']:.1f} vs {m['rest_rate_reference']:.1f} polls/s",
        )
    )
    worst = max(m["rest_max_gap_s"].values(), default=0.0)
    rows.append(_row("REST longest unpolled gap (not after a 429)", worst, "s", "<= 5 s"))
    rows.append(_row("REST poll lateness vs its slot, p99", m["rest_late_p99_s"], "s", ""))
    rows.append(_row("BRTI replica valued ticks", 100 * m["index_valued"], "%", ">= 95 %"))
    for stream, got in sorted(m["gaps_detected"].items()):
        n = m["gaps_injected"][stream]
        rows.append(
            _row(f"lost frames seen: {stream}", got, "", f"{n} injected", GAP_NOTES[stream])
        )
    for table, n in sorted(m["duplicate_rows"].items()):
        rows.append(_row(f"duplicate rows: {table}", n, "rows", "0"))
    note = f"two runs of {seconds:g} s (fault-free, then {FAULTS}) in {took:.0f} s"
    rows.append(_row("availability bench", seconds, "s", "", note))
    return rows


def _row(name: str, value: float, unit: str, target: str, note: str = "") -> dict[str, Any]:
    return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "note": note}


if __name__ == "__main__":
    length = float(sys.argv[1]) if len(sys.argv) > 1 else SECONDS
    with tempfile.TemporaryDirectory(prefix="arbkit-avail-") as tmp:
        print(json.dumps(asyncio.run(measure_runs(length, Path(tmp))), indent=2, default=str))
