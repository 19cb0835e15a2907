"""Recording end to end, and the promise that credentials never reach anything arbkit writes."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from arbkit.cli import main
from arbkit.core.config import VENUES
from arbkit.core.storage import Session, UnclosedSessionWarning, open_session
from arbkit.sim.world import World

pytestmark = pytest.mark.timeout(180)


def test_record_on_the_embedded_world_fills_every_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["record", "--minutes", "0.2", "--rest-interval", "0.5", "--out", str(tmp_path)]) == 0
    )
    out = capsys.readouterr()
    (path,) = tmp_path.iterdir()
    s = open_session(path)
    assert s.manifest["closed"] is True
    assert s.manifest["env"] == "sim"
    assert s.manifest["clock_offset"]["samples"] >= 1
    assert set(s.manifest["endpoints"]) == {"kalshi", *VENUES}
    assert s.manifest["markets"]
    for table in (
        "kalshi_book",
        "kalshi_rest_book",
        "kalshi_ticker",
        "kalshi_cf_index",
        "spot_book",
        "index",
        "events",
        "raw/kalshi_ws",
        "raw/kalshi_rest",
    ):
        assert s.frame(table).collect().height > 0, table
    assert {f"raw/{v}" for v in VENUES} <= set(s.tables)
    book = s.frame("kalshi_book").collect()
    assert set(book["market"].unique()) <= set(s.manifest["markets"])
    replica = s.frame("index").filter(pl.col("method") == "brti_replica").collect()
    assert replica["value_e8"].null_count() < replica.height
    assert replica["official_e8"].drop_nulls().len() > 0  # Kalshi's BRTI ticks reached it
    assert "WebSocket delta delay" in out.out
    assert "REST response age" in out.out
    assert "Kalshi WS" in out.err  # progress lines


def test_bad_output_directory_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["record", "--minutes", "0.1", "--out", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err
    assert f"{blocker} is a file, not a directory: choose another --out" in err
    assert str(blocker) in err
    assert "Traceback" not in err


def test_prod_without_credentials_says_which_settings_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KALSHI_API_KEY_ID", raising=False)
    monkeypatch.delenv("KALSHI_PRIVATE_KEY_PATH", raising=False)
    # endpoints point at a closed loopback port: nothing may be contacted before the check
    for name in ("KALSHI", *(v.upper() for v in VENUES)):
        monkeypatch.setenv(f"ARBKIT_{name}_WS_URL", "ws://127.0.0.1:9/x")
        monkeypatch.setenv(f"ARBKIT_{name}_REST_URL", "http://127.0.0.1:9/x")
    assert main(["record", "--env", "prod", "--minutes", "0.1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "KALSHI_API_KEY_ID" in err
    assert "KALSHI_PRIVATE_KEY_PATH" in err


def _strings_in_parquet(path: Path) -> str:
    table = pq.read_table(path)
    parts = [
        "\n".join(str(v) for v in table.column(i).to_pylist() if v is not None)
        for i, field in enumerate(table.schema)
        if str(field.type) in ("string", "large_string", "binary")
    ]
    return "\n".join(parts)


async def test_credentials_never_appear_in_anything_written_or_logged(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key_path = tmp_path / "secret" / "kalshi.pem"
    key_path.parent.mkdir()
    key_path.write_text(pem)
    key_id = str(uuid.uuid4())
    secrets = [key_id, key_id.replace("-", ""), *pem.splitlines()[1:-1]]
    numbers = key.private_numbers()
    secrets += [format(numbers.d, "x")[:40], format(numbers.p, "x")[:40]]

    out = tmp_path / "rec"
    async with World() as world:
        world.kalshi.register_key(key_id, key.public_key())
        env = dict(os.environ)
        env.update(
            KALSHI_API_KEY_ID=key_id,
            KALSHI_PRIVATE_KEY_PATH=str(key_path),
            ARBKIT_KALSHI_WS_URL=world.endpoints.kalshi.ws,
            ARBKIT_KALSHI_REST_URL=world.endpoints.kalshi.rest,
            PYTHONWARNINGS="default",
        )
        for venue, endpoint in world.endpoints.venues.items():
            env[f"ARBKIT_{venue.upper()}_WS_URL"] = endpoint.ws
            env[f"ARBKIT_{venue.upper()}_REST_URL"] = endpoint.rest
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arbkit.cli",
            "record",
            "--env",
            "prod",
            "--minutes",
            "0.15",
            "--out",
            str(out),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
        auth_failures = world.kalshi.counters["auth_failures"]
    assert proc.returncode == 0, stderr.decode()
    assert auth_failures == 0  # the run really signed with this key

    written = [stdout.decode(), stderr.decode()]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    written += [_strings_in_parquet(p) if p.suffix == ".parquet" else p.read_text() for p in files]
    text = "\n".join(written)
    assert "kalshi_book" in text or "orderbook" in text  # the haystack is real
    for secret in secrets:
        assert secret not in text


def test_full_disk_during_a_recording_stops_it_with_a_clear_error(tmp_path: Path) -> None:
    """The kernel refuses writes past 20 kB (RLIMIT_FSIZE, EFBIG), as a full disk would."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "rec"
    done = subprocess.run(
        [sys.executable, "-m", "arbkit.cli", "record", "--minutes", "0.5", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert re.search(rf"cannot (write|compact) {re.escape(str(out))}/\S+", done.stderr)
    assert "free some disk space" in done.stderr
    assert "Traceback" not in done.stderr
    for part in out.rglob("*.parquet"):
        pq.read_table(part)  # whatever was written before the disk filled is readable


def test_demo_records_the_strike_of_every_fifteen_minute_market(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--seconds", "5", "--seed", "2", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    s = open_session(path)
    markets = s.frame("kalshi_markets").collect()
    followed = [t for t in s.manifest["markets"] if t.startswith("KXBTC15M")]
    assert followed
    for ticker in followed:
        rows = markets.filter(pl.col("ticker") == ticker)
        assert rows["floor_strike_e8"].drop_nulls().len() > 0, ticker
        assert rows["close_ns"].null_count() == 0
        assert set(rows["strike_type"]) == {"greater_or_equal"}
    assert set(markets["series"]) == {"KXBTC15M", "KXBTCD", "KXBTC"}
    assert s.manifest["seed"] == 2
    out = capsys.readouterr().out
    assert "open_session" in out
    assert f"report written to {path / 'report' / 'report.html'}" in out
    assert (path / "report" / "report.html").stat().st_size > 0
    assert "report" not in s.tables


def test_record_under_faults_is_a_sim_session_with_typed_config(tmp_path: Path) -> None:
    args = ["record", "--seconds", "5", "--venues", "none", "--series", "KXBTC15M"]
    assert main([*args, "--faults", "kalshi.gap=0.2", "--seed", "7", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    m = Session(path).manifest
    assert m["env"] == "sim"
    assert m["seed"] == 7
    assert m["faults"] == "kalshi.gap=0.2"
    assert m["config"]["series"] == ["KXBTC15M"]
    assert m["config"]["venues"] == []
    assert m["config"]["seconds"] == 5.0
    assert m["config"]["session_id"] is None
    assert m["series_meta"]["KXBTC15M"]["series"]["fee_multiplier"] == 1
    assert m["counters"]["kalshi_ws"]["gaps"] >= 1  # the world's faults reached the recording
    assert set(m["endpoints"]) == {"kalshi"}


def test_a_websocket_that_never_connects_fails_the_recording_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBKIT_KALSHI_WS_URL", "ws://127.0.0.1:9/trade-api/ws/v2")
    args = ["record", "--seconds", "3", "--venues", "none", "--out", str(tmp_path)]
    assert main(args) == 1
    out = capsys.readouterr()
    assert "status: failed (Kalshi's WebSocket never connected" in out.out
    assert out.err.strip().splitlines()[-1].startswith("arbkit record: Kalshi's WebSocket never")
    assert "Traceback" not in out.err
    (path,) = tmp_path.iterdir()
    m = Session(path).manifest
    assert m["status"] == "failed"
    assert m["closed"] is False
    assert "never connected" in m["error"]


def test_a_start_that_fails_leaves_a_failed_session_not_a_closed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBKIT_KALSHI_REST_URL", "http://127.0.0.1:9/trade-api/v2")
    assert main(["record", "--seconds", "3", "--venues", "none", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (path,) = tmp_path.iterdir()
    m = Session(path).manifest
    assert m["closed"] is False
    assert m["status"] == "failed"
    assert m["error"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--faults", "nosuch=1"], "bad fault"),
        (["--env", "prod", "--seed", "3"], "--seed drive the embedded world"),
        (["--venues", "none", "coinbase"], "--venues none records Kalshi alone"),
        (["--seconds", "-1"], "must be positive"),
        (["--out", "FILE"], "is a file, not a directory"),
    ],
)
def test_bad_recording_arguments_get_one_line(
    args: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "FILE"
    blocker.write_text("x")
    argv = ["record", "--out", str(tmp_path / "rec"), *args]
    assert main([a.replace("FILE", str(blocker)) for a in argv]) == 1
    err = capsys.readouterr().err
    assert said in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "rec").exists()


def test_minutes_and_seconds_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["record", "--minutes", "1", "--seconds", "5"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_recording_interrupted_with_its_data(
    signum: int, code: int, tmp_path: Path
) -> None:
    out = tmp_path / "rec"
    cmd = [sys.executable, "-m", "arbkit.cli", "record", "--seconds", "120", "--venues", "none"]
    proc = subprocess.Popen(
        [*cmd, "--series", "KXBTC15M", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("*/raw/kalshi_ws/part-*.parquet")):  # data is on disk
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert "status: interrupted" in stdout
    (path,) = out.iterdir()
    with pytest.warns(UnclosedSessionWarning, match="interrupted"):
        s = open_session(path)
    assert s.manifest["status"] == "interrupted"
    assert s.manifest["closed"] is False
    assert s.frame("kalshi_book").collect().height > 0
