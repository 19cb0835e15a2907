"""`arbkit monitor` against the embedded world: the strategy on the live pipeline, the view in
a real pseudo-terminal, Ctrl+C, plain output off a terminal, and bad arguments."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import polars as pl
import pytest

from arbkit.cli import main
from arbkit.core.storage import UnclosedSessionWarning, open_session
from arbkit.session.decisions import LiveDecisions
from arbkit.session.environment import environment
from arbkit.session.monitor import MonitorConfig, RecentLatency
from arbkit.session.pipeline import Pipeline, Progress
from arbkit.strategy.fees import FeeSchedule
from arbkit.strategy.signals import SignalParams, Strategy
from arbkit.venues.kalshi.rest import ExchangeStatus

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ("index_e8", "index_age_ns", "yes_bid_e4", "yes_ask_e4", "book_age_ns", "fair_e4")


def _signals_carry_their_inputs(signals: pl.DataFrame) -> None:
    assert signals.height > 0
    assert signals["recv_ns"].is_sorted()
    priced = signals.filter(pl.col("fair_e4").is_not_null())
    assert priced.height > 0, signals["reason"].value_counts()
    for column in (*INPUTS, "vol_per_s", "fee_e4", "edge_e4", "time_to_close_ns"):
        assert priced[column].null_count() == 0, column
    assert set(signals["decision"]) <= {"buy", "none"}


async def test_decisions_are_taken_on_the_book_as_the_feed_applied_it(tmp_path: Path) -> None:
    config = MonitorConfig(out=tmp_path)
    checked = 0
    async with environment("sim") as env:
        pipeline = Pipeline(config, env)
        decisions = LiveDecisions(pipeline, Strategy(SignalParams(vol_min_returns=3)))
        latency = RecentLatency(pipeline, size=50)
        statuses: list[ExchangeStatus] = []
        pipeline.on_exchange(lambda _t, status: statuses.append(status))

        def compare(_progress: Progress) -> None:
            nonlocal checked
            for market, book in pipeline.feed.books.items():
                quote = book.quote()
                row = decisions.latest.get(market)
                if quote is None or row is None or market in decisions.pending:
                    continue  # (a change not yet through is decided a moment later)
                assert (row.yes_bid_e4, row.yes_ask_e4) == (quote.yes_bid_e4, quote.yes_ask_e4)
                assert (row.yes_bid_size_e2, row.yes_ask_size_e2) == (
                    quote.yes_bid_qty_e2,
                    quote.yes_ask_qty_e2,
                )
                checked += 1

        async with pipeline:
            decisions.load_fees()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                r.fair_e4 is not None for r in decisions.latest.values()
            ):
                await pipeline.run(1.0, on_progress=compare, progress_every=0.25)
        meta = pipeline.series_meta["KXBTC15M"]["series"]
    assert checked > 0
    assert statuses  # the start's GET /exchange/status reached the listeners
    assert decisions.strategy.trading_active is statuses[-1].trading_active
    assert decisions.fee_series == ["KXBTC15M"]
    assert decisions.strategy.fees["KXBTC15M"] == FeeSchedule.from_series(meta)
    session = open_session(pipeline.path)
    signals = session.frame("signals").collect()
    assert signals.height == decisions.decisions
    _signals_carry_their_inputs(signals)
    assert set(signals["market"]) <= set(session.manifest["markets"])
    # the recent latencies are the session's own last deltas and polls
    deltas = (
        session.frame("kalshi_book")
        .filter(~pl.col("is_snapshot") & pl.col("exch_ns").is_not_null())
        .select(pl.col("recv_ns") - pl.col("exch_ns"))
        .collect()
        .to_series()
    )
    assert list(latency.ws_ns) == deltas.tail(50).to_list()
    polls = (
        session.frame("kalshi_rest_book")
        .unique("poll_id", keep="first", maintain_order=True)
        .select(pl.col("recv_ns") - pl.col("sent_ns"))
        .collect()
        .to_series()
    )
    assert list(latency.rest_ns) == polls.tail(50).to_list()


def test_off_a_terminal_it_prints_plain_lines_and_closes_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["monitor", "KXBTC15M", "--brti-interval", "1", "--seconds", "8", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # no terminal control codes
    assert re.search(r"Kalshi WS \d+ frames.*\| signals [\d,]+ \(", out)
    assert re.search(r"KXBTC15M-\S+ ≥ [\d,.]+ closes \d+:\d\d bid 0\.\d{4} ask 0\.\d{4}", out)
    assert "signals:" in out
    (path,) = tmp_path.iterdir()
    session = open_session(path)
    assert session.manifest["status"] == "closed"
    assert session.manifest["config"]["brti_interval"] == 1.0
    params = session.manifest["config"]["signal_params"]
    assert params["vol_min_returns"] == 3
    assert params["maintenance"] is None  # the world pauses trading itself, if at all
    assert session.frame("signals").collect().height > 0


def test_in_a_terminal_it_shows_live_markets_and_ctrl_c_ends_it_with_a_summary(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "arbkit.cli", "monitor", "KXBTC15M", "1", "--out", str(tmp_path)],
        cwd=str(ROOT),
        env=env,
        dimensions=(30, 100),
        encoding="utf-8",
        timeout=60,
    )
    child.logfile_read = screen = io.StringIO()
    try:
        started = time.monotonic()
        # a market row: ticker, strike, closes in, YES bid, YES ask (prices as $0.0001)
        child.expect(r"KXBTC15M-\S+ +≥ [\d,.]+ +\d+:\d\d +0\.\d{4} +0\.\d{4}")
        seen_market_s = time.monotonic() - started
        child.expect(r"0\.\d{4} +0\.\d{4} +0\.\d{4} +[+-]0\.\d{4}")  # ... and a fair value, edge
        child.expect("connection health")
        child.sendintr()
        child.expect("status: interrupted")
        child.expect(r"signals: [\d,]+ decisions")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    print(f"live market row after {seen_market_s:.1f} s")
    assert child.exitstatus == 130, screen.getvalue()[-2000:]
    assert "Traceback" not in screen.getvalue()
    (path,) = tmp_path.iterdir()
    with pytest.warns(UnclosedSessionWarning):
        session = open_session(path)
    assert session.manifest["status"] == "interrupted"
    _signals_carry_their_inputs(session.frame("signals").collect())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["KXFOO"], "unknown series 'KXFOO': choose one of KXBTC15M, KXBTCD, KXBTC"),
        (["KXBTC15M", "-1"], "BRTI_INTERVAL must be a positive number of seconds, got -1"),
        (["--brti-interval", "-0.5"], "must be a positive number of seconds, got -0.5"),
        (["KXBTC15M", "soon"], "BRTI_INTERVAL must be a number of seconds, got 'soon'"),
        (["KXBTC15M", "1", "--brti-interval", "2"], "disagree; give one"),
        (["--faults", "nosuch=1"], "bad fault"),
        (["--env", "prod", "--seed", "3"], "--seed drive the embedded world"),
        (["--seconds", "0"], "--seconds must be positive"),
    ],
)
def test_bad_arguments_get_one_line_and_no_session(
    args: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["monitor", *args, "--out", str(tmp_path / "rec")]) == 1
    err = capsys.readouterr().err
    assert said in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "rec").exists()


def test_prod_without_a_key_is_one_line_and_no_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KALSHI_API_KEY_ID", raising=False)
    monkeypatch.delenv("KALSHI_PRIVATE_KEY_PATH", raising=False)
    assert main(["monitor", "--env", "prod", "--out", str(tmp_path / "rec")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "arbkit monitor: Kalshi's WebSocket needs an API key: set KALSHI_API_KEY_ID and "
        "KALSHI_PRIVATE_KEY_PATH (or use --env sim)"
    )
    assert not (tmp_path / "rec").exists()


async def test_fees_come_from_each_series_metadata_where_the_model_covers_them(
    tmp_path: Path,
) -> None:
    async with environment("sim") as env:
        pipeline = Pipeline(MonitorConfig(out=tmp_path), env)  # built, never started
        decisions = LiveDecisions(pipeline, Strategy())
        pipeline.series_meta = {
            "KXBTC15M": {"series": {"ticker": "KXBTC15M", "fee_type": "flat", "fee_multiplier": 1}},
            "KXBTCD": {"series": None, "fee_changes": None},
            "KXBTC": {
                "series": {
                    "ticker": "KXBTC",
                    "fee_type": "quadratic_with_maker_fees",
                    "fee_multiplier": 0.5,
                },
                "fee_changes": {"series_fee_change_arr": []},
            },
        }
        decisions.load_fees()
    assert decisions.fee_series == ["KXBTC"]
    assert set(decisions.strategy.fees) == {"KXBTC"}
    # 10 contracts at $0.50, half the 0.07 rate: 0.0875 -> $0.0875 (subpenny era rounding)
    assert decisions.strategy.fees["KXBTC"].fee_e4(5_000, 10, 1_796_412_000_000_000_000) == 875


def test_sigterm_off_a_terminal_closes_the_session_interrupted_and_exits_143(
    tmp_path: Path,
) -> None:
    cmd = [sys.executable, "-m", "arbkit.cli", "monitor", "--venues", "none"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(tmp_path)],
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # plain lines: the first block shows the session exists
            if "Kalshi WS" in line:
                break
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "status: interrupted" in stdout
    (path,) = tmp_path.iterdir()
    with pytest.warns(UnclosedSessionWarning):
        assert open_session(path).manifest["status"] == "interrupted"
