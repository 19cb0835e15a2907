"""``arbkit brti`` live: the embedded world in-process (``--env sim``), the public-feed path
(``--env prod``) pointed at a world on loopback through the ``ARBKIT_<VENUE>_*_URL``
overrides, progress and errors, and a clean Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import orjson
import pytest

from arbkit.cli import main
from arbkit.core.config import VENUES
from arbkit.sim.world import World


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["brti", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_one_shot_json_on_the_embedded_world(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--json")
    assert code == 0, err
    d = orjson.loads(out)
    assert d["index"] == "BRTI"
    assert d["value"] is not None
    assert d["value_e8"] == int(d["value"].replace(".", "")) * 10**6
    assert int(d["utilized_depth"]) >= 1
    assert d["waiting_for"] == []
    assert sorted(v["venue"] for v in d["venues"]) == sorted(VENUES)
    assert {v["status"] for v in d["venues"]} == {"used"}
    assert all(v["bid_levels"] > 0 and v["ask_levels"] > 0 for v in d["venues"])
    assert sum(v["depth_used"] for v in d["venues"]) == pytest.approx(int(d["utilized_depth"]))
    assert set(d["proxies"]) == {"median_mid", "vw_mid"}
    assert "sim: first books from 8/8 venues" in err  # progress while waiting


def test_stream_prints_a_table_per_tick(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    code, out, _ = run(capsys, "--stream", "--interval", "1", "--minutes", "0.05")
    assert code == 0
    blocks = out.split("BRTI replica")[1:]
    assert len(blocks) >= 3  # 3 s at one print a second
    for block in blocks:
        rows = [line.split()[0] for line in block.splitlines() if line.strip()]
        assert all(venue in rows for venue in VENUES)
        assert block.count(" used") >= len(VENUES)
    assert out.count(" UTC") == len(blocks)


async def test_prod_path_honours_url_overrides_and_names_missing_venues(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--env prod`` with every URL overridden: two venues served by a world on loopback,
    Gemini pointed at a closed port (reported as missing, shown as excluded)."""
    async with World(venues=("coinbase", "kraken")) as w:
        for venue, endpoint in w.endpoints.venues.items():
            monkeypatch.setenv(f"ARBKIT_{venue.upper()}_WS_URL", endpoint.ws)
            monkeypatch.setenv(f"ARBKIT_{venue.upper()}_REST_URL", endpoint.rest)
        monkeypatch.setenv("ARBKIT_GEMINI_WS_URL", f"ws://127.0.0.1:{closed_port()}/v1")
        argv = ["brti", "--env", "prod", "--json", "--venues", "coinbase,kraken,gemini"]
        code = await asyncio.to_thread(main, [*argv, "--wait", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = orjson.loads(out)
    assert d["venues_used"] == ["coinbase", "kraken"]
    assert d["excluded"] == {"gemini": "empty book"}
    assert d["waiting_for"] == ["gemini"]
    assert "no book from gemini after 2 s; shown as excluded, still trying" in err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--index", "ETHUSD_RTI"], {}, "live mode computes the BRTI only"),
        (["--venues", "coinbase,nowhere"], {}, "unknown venue(s) nowhere"),
        (["--wait", "0"], {}, "--wait must be positive"),
        (["--wait", "nan"], {}, "--wait must be positive"),
        (
            ["--env", "prod", "--venues", "kraken"],
            {"ARBKIT_KRAKEN_WS_URL": "https://ws.kraken.com/v2"},
            "must start with ws:// or wss://; fix ARBKIT_KRAKEN_WS_URL",
        ),
        (
            ["--env", "prod", "--venues", "coinbase,kraken", "--wait", "0.5"],
            {
                "ARBKIT_COINBASE_WS_URL": "ws://127.0.0.1:{port}",
                "ARBKIT_KRAKEN_WS_URL": "ws://127.0.0.1:{port}",
            },
            "no venue sent a book within 0.5 s (prod endpoints)",
        ),
    ],
)
def test_live_errors_are_clear(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    port = closed_port()
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(port=port))
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert out == ""
    assert err.splitlines()[-1].startswith("arbkit brti: ")
    assert message in err.splitlines()[-1]
    assert "Traceback" not in err


async def test_ctrl_c_stops_the_stream_cleanly() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arbkit.cli",
        "brti",
        "--stream",
        "--json",
        "--interval",
        "0.5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert orjson.loads(line)["value"] is not None
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = err.decode()
    assert proc.returncode == 130, text
    assert text.rstrip().endswith("arbkit brti: interrupted")
    assert "Traceback" not in text
    assert "Task was destroyed" not in text
    assert "Unclosed" not in text
