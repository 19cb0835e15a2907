"""Generated sessions: the embedded world recorded in virtual time, through the live parsers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from arbkit.cli import main
from arbkit.core.config import VENUES
from arbkit.core.events import row_type_of, schema
from arbkit.core.storage import Session, open_session
from arbkit.session.generate import DEFAULT_START_NS, GenerateConfig, Generation, generate

pytestmark = pytest.mark.timeout(240)

NS = 1_000_000_000
START = DEFAULT_START_NS + 12 * 60 * NS
"""Three minutes before a 15-minute close, so a short session sees a rollover."""
FAULTS = "kalshi.gap=0.01,dup=0.005,malformed=0.002,coinbase.gap=0.02,drop=60s,http429=0.05"

LIVE_TABLES = {
    "events",
    "index",
    "kalshi_book",
    "kalshi_cf_index",
    "kalshi_lifecycle",
    "kalshi_markets",
    "kalshi_rest_book",
    "kalshi_ticker",
    "kalshi_trades",
    "spot_book",
    "raw/kalshi_ws",
    "raw/kalshi_rest",
    *(f"raw/{v}" for v in VENUES),
}
"""What a live recording of the embedded world holds (arbkit record on the world, plus the
``kalshi_markets`` table of INTERFACES §1)."""


def _config(out: Path, **kw: object) -> GenerateConfig:
    options: dict[str, object] = {"hours": 5 / 60, "start_ns": START, "out": out, **kw}
    return GenerateConfig(**options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Generation, Session]:
    gen = Generation(_config(tmp_path_factory.mktemp("clean")))
    return gen, open_session(gen.run(None))


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Generation, Session]:
    gen = Generation(_config(tmp_path_factory.mktemp("faulted"), faults=FAULTS, seed=7))
    return gen, open_session(gen.run(None))


def test_a_generated_session_has_every_live_table_with_its_schema(
    clean: tuple[Generation, Session],
) -> None:
    _, s = clean
    assert set(s.tables) >= LIVE_TABLES
    for table in LIVE_TABLES:
        (part,) = s.files(table)  # compacted, as a closed live session
        got = pq.read_schema(part).remove_metadata()
        assert got.equals(schema(row_type_of(table)).remove_metadata()), table
        assert s.frame(table).select(pl.len()).collect().item() > 0, table
    m = s.manifest
    assert m["closed"] is True
    assert m["generated"] is True
    assert m["start_ns"] == START
    assert m["end_ns"] == START + 300 * NS
    assert m["clock_offset"]["samples"] >= 10  # a probe every 10 s (the estimator keeps 15)
    assert (
        m["counters"]["kalshi_ws"]["frames"]
        == s.frame("raw/kalshi_ws")
        .filter(pl.col("kind") == "frame")
        .select(pl.len())
        .collect()
        .item()
    )


def test_every_row_is_stamped_in_virtual_time(clean: tuple[Generation, Session]) -> None:
    _, s = clean
    for table in s.tables:
        t = s.frame(table).select(pl.col("recv_ns").min().alias("lo"), pl.col("recv_ns").max())
        lo, hi = t.collect().row(0)
        assert START <= lo <= hi <= START + 301 * NS, table


def test_rollover_and_market_rows(clean: tuple[Generation, Session]) -> None:
    _, s = clean
    markets = s.frame("kalshi_markets").collect()
    fifteen = markets.filter(pl.col("series") == "KXBTC15M")
    first = fifteen.filter(pl.col("close_ns") == START + 3 * 60 * NS)
    assert set(first["status"]) >= {"active", "determined"}
    settled = first.filter(pl.col("result") != "")
    assert settled["expiration_value_e8"].null_count() == 0
    assert first["floor_strike_e8"].null_count() == 0
    successor = fifteen.filter(pl.col("close_ns") == START + 18 * 60 * NS)
    assert successor["floor_strike_e8"].drop_nulls().len() > 0  # strike published at open
    # the feed followed the successor: its book was snapshotted on the WebSocket
    book = s.frame("kalshi_book").filter(pl.col("market").is_in(successor["ticker"].to_list()))
    assert book.filter(pl.col("is_snapshot")).select(pl.len()).collect().item() > 0


def _rebuild(s: Session) -> dict[str, tuple[dict[int, int], dict[int, int]]]:
    """Books from ``kalshi_book`` alone: a snapshot resets, a delta adds (INTERFACES data
    dictionary: qty absolute on snapshots, signed on deltas)."""
    books: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
    last_snap: dict[str, tuple[int, int, int]] = {}
    for market, side, price, qty, snap, sid, seq, conn in (
        s.frame("kalshi_book")
        .select("market", "side", "price_e4", "qty_e2", "is_snapshot", "sid", "seq", "conn_id")
        .collect()
        .iter_rows()
    ):
        if snap:
            if last_snap.get(market) != (conn, sid, seq):
                last_snap[market] = (conn, sid, seq)
                books[market] = ({}, {})
            if side:
                books[market][0 if side == "yes" else 1][price] = qty
            continue
        levels = books.setdefault(market, ({}, {}))[0 if side == "yes" else 1]
        levels[price] = levels.get(price, 0) + qty
        if levels[price] == 0:
            del levels[price]
    return books


@pytest.mark.parametrize("which", ["clean", "faulted"])
def test_books_rebuilt_from_the_table_equal_the_worlds_true_books(
    which: str, request: pytest.FixtureRequest
) -> None:
    gen, s = request.getfixturevalue(which)
    rebuilt = _rebuild(s)
    valid = gen.feed.valid_books()
    assert len(valid) >= 10
    for market in valid:
        truth = gen.exchange.books[market]
        assert rebuilt[market] == (truth.yes, truth.no), market


def test_faults_produce_gaps_that_are_detected_in_events(
    faulted: tuple[Generation, Session],
) -> None:
    gen, s = faulted
    events = s.frame("events").collect()
    kinds: defaultdict[str, set[str]] = defaultdict(set)
    for stream, kind in events.select("stream", "kind").iter_rows():
        kinds[stream].add(kind)
    assert gen.counts.gaps > 0
    assert gen.counts.dups > 0
    assert gen.counts.rest_errors > 0
    assert "gap" in kinds["kalshi_ws"]
    assert "gap" in kinds["coinbase"]
    assert {"disconnect", "reconnect", "connect"} <= kinds["kalshi_ws"]
    assert "malformed" in kinds["kalshi_ws"] or gen.counts.malformed == 0
    statuses = set(s.frame("kalshi_rest_book").select("status").collect()["status"])
    assert 429 in statuses
    assert 200 in statuses


def test_generation_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    config = {"hours": 1 / 60, "seed": 5, "faults": FAULTS}
    a = open_session(generate(_config(tmp_path / "a", **config)))
    b = open_session(generate(_config(tmp_path / "b", **config)))
    c = open_session(generate(_config(tmp_path / "c", **{**config, "seed": 6})))
    assert a.tables == b.tables
    for table in a.tables:
        assert a.frame(table).collect().equals(b.frame(table).collect()), table
    assert not a.frame("spot_book").collect().equals(c.frame("spot_book").collect())


def test_two_processes_write_what_one_process_writes(
    faulted: tuple[Generation, Session], tmp_path: Path
) -> None:
    """`generate` splits the world over two processes (Kalshi here, the spot side and the
    replica in a child, official ticks passed per chunk): every table, counter and parser
    declaration is the same as one process's, and no part directory is left behind."""
    gen, one = faulted
    seen: list[float] = []
    path = generate(replace(gen.config, out=tmp_path), progress=lambda d, _: seen.append(d))
    two = open_session(path)
    assert [p.name for p in tmp_path.iterdir()] == [two.path.name]
    assert one.tables == two.tables
    for table in one.tables:
        a, b = one.frame(table).collect(), two.frame(table).collect()
        if table == "events":  # both sides write it; merged by time (ties may swap sides)
            a, b = a.sort("recv_ns", "stream"), b.sort("recv_ns", "stream")
        assert a.equals(b), table
    assert one.frame("index").filter(pl.col("official_e8").is_not_null()).collect().height > 0
    for key in ("counters", "rows", "streams", "end_ns", "generation"):
        if key == "generation":
            assert one.manifest[key]["injected"] == two.manifest[key]["injected"]
        else:
            assert one.manifest[key] == two.manifest[key], key
    assert two.manifest["status"] == "closed"
    assert seen == sorted(seen)  # one bar over both sides, to the end
    assert seen[-1] == gen.config.hours * 3600


def test_maker_lag_and_rest_cache_are_knobs(tmp_path: Path) -> None:
    """REST response ages follow the cache setting (a 0 s cache serves every poll fresh)."""
    ages = {}
    for cache in (0.0, 15.0):
        path = generate(_config(tmp_path / str(cache), hours=2 / 60, rest_cache_s=cache))
        rest = open_session(path).frame("kalshi_rest_book").collect()
        ages[cache] = rest["age_s"].drop_nulls()
    assert ages[0.0].len() == 0
    assert ages[15.0].max() <= 15
    assert ages[15.0].mean() > 2


def test_cli_generates_and_rejects_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["sim", "generate", "--hours", "0.005", "--seed", "2", "--out", str(tmp_path)]
    assert main([*args, "--maker-lag", "1", "--rest-cache", "5"]) == 0
    path = Path(capsys.readouterr().out.strip())
    config = open_session(path).manifest["config"]
    assert (config["seed"], config["maker_lag_s"], config["rest_cache_s"]) == (2, 1.0, 5.0)
    assert main(args) == 1  # the session exists: one line, no traceback
    assert main(["sim", "generate", "--hours", "0", "--out", str(tmp_path)]) == 1
    assert main(["sim", "generate", "--hours", "1", "--faults", "gap=x"]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err
    assert "--hours must be a positive" in err
    assert "Traceback" not in err


SAMPLE = Path(__file__).parents[1] / "data" / "sample" / "20261102T000000Z-gen42"


def test_the_shipped_sample_session_opens_with_every_live_table() -> None:
    s = open_session(SAMPLE)
    assert set(s.tables) >= LIVE_TABLES
    assert s.manifest["closed"] is True
    assert s.manifest["generated"] is True
    size = sum(f.stat().st_size for f in SAMPLE.rglob("*") if f.is_file())
    assert size <= 20_000_000
    assert s.manifest["status"] == "closed"
    assert set(s.manifest["streams"]) >= {"kalshi_ws", *VENUES}  # parsers declared
    assert all("module" in v["parser"] for v in s.manifest["streams"].values())
    settled = s.frame("kalshi_markets").filter(pl.col("result") != "").collect()
    assert set(settled["series"]) == {"KXBTC15M", "KXBTCD", "KXBTC"}  # each series settled


def test_a_server_that_drops_its_client_is_reconnected_to(tmp_path: Path) -> None:
    """A venue server closing its client (as Crypto.com does on a missed heartbeat) ends the
    virtual connection after what was already sent; the feed reconnects, as live."""
    gen = Generation(_config(tmp_path, hours=1 / 60))
    server = gen.spot.servers["cryptocom"]
    gen.sched.at(START + 20 * NS, lambda: server.drop(next(iter(server.conns))))
    events = open_session(gen.run(None)).frame("events")
    rows = events.filter(pl.col("stream") == "cryptocom").collect()
    assert rows["kind"].to_list()[:2] == ["connect", "disconnect"]
    assert rows["detail"][1].startswith("closed by server")
    assert rows["kind"].to_list().count("connect") == 2


def test_a_legacy_era_session_is_parsed_by_the_same_client(tmp_path: Path) -> None:
    """``--era legacy``: integer-cent frames (≤ 2025), books still equal the world's."""
    gen = Generation(_config(tmp_path, hours=1 / 60, era="legacy"))
    s = open_session(gen.run(None))
    frame = s.raw("kalshi_ws").filter(pl.col("payload").str.contains('"orderbook_delta"'))
    assert '"price":' in frame.collect()["payload"][-1]  # integer cents on the wire
    rebuilt = _rebuild(s)
    for market in gen.feed.valid_books():
        truth = gen.exchange.books[market]
        assert rebuilt[market] == (truth.yes, truth.no), market
