"""``arbkit sim`` as a user runs it: ready when it speaks, clean on SIGTERM/SIGINT, and every
bad option one clear line with a non-zero exit (no traceback)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from arbkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
SERIES = ("KXBTC15M", "KXBTCD", "KXBTC")


async def _announced(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    """The JSON ``arbkit sim`` prints (indented, so read until it parses)."""
    assert proc.stdout is not None
    text = ""
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, "arbkit sim exited before announcing its endpoints"
        text += line.decode()
        try:
            out: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError:
            continue
        return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_announced_world_has_open_markets_and_its_key_goes_with_it(sig: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "arbkit.cli", "sim", "--seed", "3", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        info = await _announced(proc)
        rest = info["endpoints"]["kalshi"]["rest"]
        # an independent client (plain aiohttp), the instant the JSON is out
        async with aiohttp.ClientSession() as http:
            for series in SERIES:
                url = f"{rest}/markets?series_ticker={series}&status=open"
                async with http.get(url) as r:
                    assert r.status == 200
                    markets = (await r.json())["markets"]
                assert markets, f"no open {series} market right after the announcement"
            coinbase = info["endpoints"]["coinbase"]["rest"]
            url = f"{coinbase}/market/product_book?product_id=BTC-USD&limit=1"
            async with http.get(url) as r:
                book = (await r.json())["pricebook"]
                assert book["bids"]
                assert book["asks"]
        key = Path(info["kalshi_private_key_path"])
        assert key.is_file()
        proc.send_signal(sig)
        rc = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode()
    assert rc == 0, err
    assert "Traceback" not in err
    assert not key.exists()
    assert not key.parent.exists(), "the generated key's temp dir outlived the world"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--port", "99999"], "--port must be 0..65535"),
        (["--port", "-1"], "--port must be 0..65535"),
        (["--seconds", "-1"], "--seconds must be a positive"),
        (["--seconds", "nan"], "--seconds must be a positive"),
        (["--rest-cache", "-2"], "--rest-cache must be a non-negative"),
        (["--ws-delay", "-0.1"], "--ws-delay must be a non-negative"),
        (["--faults", "gap=2"], "gap takes a probability between 0 and 1"),
        (["--faults", "gap=-0.5"], "gap takes a probability between 0 and 1"),
        (["--faults", "nosuchvenue.gap=0.1"], "unknown fault target 'nosuchvenue'"),
        (["--faults", "explode=1"], "name one of corrupt, crossed, drop"),
        (["--faults", "drop=10s,,gap=0.01"], "empty item in fault spec"),
        (["--faults", "drop=soon"], "drop takes a non-negative duration"),
    ],
)
def test_bad_options_get_one_clear_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["sim", *argv])
    out, err = capsys.readouterr()
    assert rc == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("arbkit sim: "), err
    assert says in lines[0]


def test_unknown_target_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--faults", "nosuchvenue.gap=0.1"]) == 1
    err = capsys.readouterr().err
    assert "choose from kalshi, coinbase, kraken" in err


def test_cli_error_exits_non_zero_in_a_real_process() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "arbkit.cli", "sim", "--port", "99999"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "arbkit sim: --port must be 0..65535 (0 = a free port), got 99999"
