"""Replay: a live-recorded session's raw frames, fed back through the recorded parsers,
reproduce its normalised tables exactly (recorded from the embedded world under faults)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest

from arbkit.core.config import Endpoint
from arbkit.core.errors import StorageError
from arbkit.core.events import EventRow, RawFrame
from arbkit.core.retry import Backoff
from arbkit.core.sink import MemorySink
from arbkit.core.storage import Session, open_session
from arbkit.replay.player import (
    NOT_FROM_RAW,
    TRANSPORT_EVENTS,
    Player,
    ReplaySink,
    StreamReplay,
    parser_events,
    replay_tables,
)
from arbkit.session.environment import environment
from arbkit.session.record import RecordConfig, record
from arbkit.venues.parsers import build, identity_of
from arbkit.venues.runner import run_feed
from arbkit.venues.spot import make_feed
from tests.sim_spot_support import World as SpotWorld

pytestmark = pytest.mark.timeout(180)

SPOT_ENDPOINT = Endpoint(ws="ws://127.0.0.1:9", rest="http://127.0.0.1:9")

FAULTS = "drop=4s,gap=0.01,dup=0.01,malformed=0.002"
PARSED = (
    "kalshi_book",
    "kalshi_trades",
    "kalshi_ticker",
    "kalshi_lifecycle",
    "kalshi_cf_index",
    "spot_book",
)


async def _record(out: Path) -> Path:
    """The one place a test session is recorded (the pipeline is being refactored)."""
    async with environment("sim", seed=3, faults=FAULTS) as env:
        config = RecordConfig(seconds=8.0, rest_interval=0.5, out=out, session_id="s")
        return await record(config, env)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return open_session(asyncio.run(_record(tmp_path_factory.mktemp("replay"))))


def test_every_raw_stream_names_its_parser(session: Session) -> None:
    streams = session.manifest["streams"]
    assert streams["kalshi_ws"]["parser"]["class"] == "KalshiProtocol"
    assert streams["kraken"]["parser"]["options"]["depth"] == 1000
    for stream, entry in streams.items():
        parser = entry["parser"]
        assert set(parser) == {"module", "class", "era", "options"}, stream
        assert identity_of(build(parser)) == {**parser, "era": parser["era"]}


def test_replay_reproduces_the_recorded_tables_exactly(session: Session) -> None:
    counters = session.manifest["counters"]
    assert counters["kalshi_ws"].get("gaps", 0) > 0  # the faults really happened
    assert (
        counters["kalshi_ws"].get("malformed", 0) + counters["kalshi_ws"].get("duplicates", 0) > 0
    )
    replayed = replay_tables(session)
    assert not set(NOT_FROM_RAW) & set(replayed)
    for table in PARSED:
        recorded = session.frame(table).collect()
        if table in ("kalshi_book", "kalshi_ticker", "spot_book"):
            assert recorded.height > 0, table  # (trades and lifecycle may not occur in 8 s)
        got = replayed.get(table, recorded.clear())
        assert got.schema == recorded.schema, table
        assert got.equals(recorded), table  # same rows in the same order
    streams = Player(session).streams
    recorded_events = parser_events(session.frame("events").collect())
    recorded_events = recorded_events.filter(pl.col("stream").is_in(streams))
    got_events = parser_events(replayed["events"])
    assert {"gap", "resync", "subscribed"} <= set(got_events["kind"])
    assert got_events.equals(recorded_events)


def test_player_streams_and_merges_by_receive_time(session: Session) -> None:
    player = Player(session, ["kalshi_ws", "kraken"], batch_rows=64)
    assert player.skipped == []
    times = [frame.recv_ns for _, frame in player.frames()]
    assert len(times) == sum(session.raw(s).collect().height for s in player.streams)
    assert times == sorted(times)
    rows = list(player)
    assert {r.TABLE for r in rows} >= {"kalshi_book", "spot_book"}
    assert player.protocols["kraken"].books["BTC/USD"].bids  # final parser state is readable
    assert player.counters["kalshi_ws"]["gaps"] == session.manifest["counters"]["kalshi_ws"]["gaps"]
    with pytest.raises(StorageError, match="no raw stream 'nope'"):
        Player(session, ["nope"])
    assert "kalshi_rest" in Player(session).skipped  # no parser: REST bodies lack status/Age


def _replayed(sink: MemorySink, stream: str) -> ReplaySink:
    """``stream``'s raw frames from a live run fed back through its declared parser."""
    out = ReplaySink()
    player = StreamReplay(stream, sink.streams[stream], out)
    for frame in sink.raw[stream]:
        player.feed(frame)
    return out


async def test_bitstamp_diff_feed_replays_its_rest_snapshots_too() -> None:
    """REST snapshots fetched by the runner for a diff feed are raw ``http`` frames: a replay
    aligns the diffs to them as the live feed did."""
    async with SpotWorld(("bitstamp",)) as w:
        sink = MemorySink()
        feed = make_feed("bitstamp", w.eps["bitstamp"], sink, mode="diff")
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed(feed, sink, stop=stop, backoff=Backoff(0.05, 0.2)))
        try:
            for _ in range(500):
                if feed.books["btcusd"].valid:
                    break
                await asyncio.sleep(0.01)
            for _ in range(20):
                w.advance(1)
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await task
    kinds = [f.kind for f in sink.raw["bitstamp"]]
    assert "http" in kinds
    assert sink.streams["bitstamp"]["options"]["mode"] == "diff"
    out = _replayed(sink, "bitstamp")
    replayed = [r for r in out.pending if r.TABLE == "spot_book"]
    assert replayed == sink.rows["spot_book"]
    assert len(replayed) > 20
    events = [r for r in out.pending if isinstance(r, EventRow)]
    assert events == [e for e in sink.events() if e.kind not in TRANSPORT_EVENTS]


def test_markets_added_and_dropped_from_outside_the_protocol_are_applied_again() -> None:
    """Discovery adds and drops Kalshi markets through the feed; the raw stream has only the
    commands that caused, and the replay makes the same changes from them."""
    identity = identity_of(build({"module": "", "class": "KalshiProtocol"}))  # found by name
    replay = StreamReplay("kalshi_ws", {**identity, "options": {"markets": ["A"]}}, ReplaySink())
    sent = [
        '{"id":9,"cmd":"update_subscription","params":{"sid":1,"market_tickers":["B"],'
        '"action":"add_markets"}}',
        '{"id":10,"cmd":"update_subscription","params":{"sid":1,"market_tickers":["A"],'
        '"action":"delete_markets"}}',
    ]
    replay.feed(RawFrame(1, 1, 1, "connect", "ws://x"))
    replay.feed(RawFrame(2, 1, 2, "send", sent[0]))
    assert replay.protocol.markets == {"A", "B"}
    assert "B" in replay.protocol.books
    replay.feed(RawFrame(3, 1, 3, "send", sent[1]))
    assert replay.protocol.markets == {"B"}
    replay.feed(RawFrame(4, 1, 4, "send", "not a command"))  # ignored
    replay.feed(RawFrame(5, 1, 5, "disconnect", "closed by server"))
    assert not replay.protocol.connected


def test_a_parser_bug_in_a_guarded_callback_is_recorded_not_raised() -> None:
    identity = identity_of(make_feed("coinbase", SPOT_ENDPOINT, MemorySink()))
    replay = StreamReplay("coinbase", identity, ReplaySink())

    def broken(conn_id: int, now_ns: int) -> None:
        raise RuntimeError("boom")

    replay.protocol.on_open = broken
    replay.feed(RawFrame(7, 1, 1, "connect", "ws://x"))
    (event,) = replay.sink.pending
    assert isinstance(event, EventRow)
    assert (event.recv_ns, event.kind, event.detail) == (
        7,
        "error",
        "on_open failed: RuntimeError: boom",
    )
    assert replay.sink.counters["coinbase"]["errors"] == 1


async def test_a_refused_rest_snapshot_and_its_timer_driven_retry_replay() -> None:
    """A 503 is recorded with its status; the retry the live feed sent from a timer tick is
    recognised in the raw stream and the replayed feed ticks there too."""
    async with SpotWorld(("bitstamp",)) as w:
        w.sim.inject("bitstamp", "http5xx")
        sink = MemorySink()
        feed = make_feed("bitstamp", w.eps["bitstamp"], sink, mode="diff")
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_feed(feed, sink, stop=stop, backoff=Backoff(0.05, 0.2), timer_interval=0.05)
        )
        try:
            for _ in range(1000):
                if feed.books["btcusd"].valid:
                    break
                w.advance(1)
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await task
    raw = sink.raw["bitstamp"]
    assert any(f.kind == "error" and f.payload.startswith("HTTP 503 ") for f in raw)
    assert [f.kind for f in raw].count("http") >= 1
    out = _replayed(sink, "bitstamp")
    assert "replay_unmatched_http" not in out.counters["bitstamp"]
    assert [r for r in out.pending if r.TABLE == "spot_book"] == sink.rows["spot_book"]
    live = [e for e in sink.events() if e.kind not in TRANSPORT_EVENTS]
    replayed = [r for r in out.pending if isinstance(r, EventRow)]

    assert replayed == live  # the retry delays too: the feed's jitter is seeded per symbol
    assert any(e.detail.startswith("REST snapshot: HTTP 503") for e in replayed)
