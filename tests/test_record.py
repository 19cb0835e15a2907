"""Recording end to end, and the promise that credentials never reach anything arbkit writes."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from arbkit.cli import main
from arbkit.core.config import VENUES
from arbkit.core.storage import open_session
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
