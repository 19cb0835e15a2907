"""How fast the embedded Kalshi world can push ``orderbook_delta`` frames over loopback.

Starts ``python -m arbkit.sim.kalshi --delta-rate inf`` in another process, connects one raw
aiohttp WebSocket client (signed like any client), subscribes to ten markets and counts the
frames received per second, without parsing them. This bounds what a client benchmark over
loopback can measure; the client's own end-to-end figure (frame -> book) is the venues' bench.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

from arbkit.core.config import Credentials
from arbkit.sim.kalshi.auth import signed_headers


def start_world(*extra: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Run the world in a child process; returns it and its endpoints line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "arbkit.sim.kalshi", "--delta-rate", "inf", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    info: dict[str, Any] = orjson.loads(proc.stdout.readline())
    return proc, info


async def receive_rate(
    info: dict[str, Any], seconds: float, markets: int = 10
) -> tuple[float, int]:
    creds = Credentials(key_id=info["key_id"], private_key_path=Path(info["private_key_path"]))
    key = creds.load_private_key()
    async with aiohttp.ClientSession() as session:
        async with session.get(info["rest_url"] + "/markets?status=open&series_ticker=KXBTCD") as r:
            tickers = [m["ticker"] for m in (await r.json())["markets"]][:markets]
        headers = signed_headers(
            creds.key_id, key, "GET", "/trade-api/ws/v2", time.time_ns() // 10**6
        )
        async with session.ws_connect(info["ws_url"], headers=headers, max_msg_size=0) as ws:
            cmd = {
                "id": 1,
                "cmd": "subscribe",
                "params": {"channels": ["orderbook_delta"], "market_tickers": tickers},
            }
            await ws.send_str(orjson.dumps(cmd).decode())
            for _ in range(50):  # warm-up
                await ws.receive()
            n = 0
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    n += 1
            return n / elapsed, n


def run() -> list[dict[str, Any]]:
    proc, info = start_world()
    try:
        child = psutil.Process(proc.pid)
        before = sum(child.cpu_times()[:2])
        rate, frames = asyncio.run(receive_rate(info, 5.0))
        world_cpu = sum(child.cpu_times()[:2]) - before
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return [
        {
            "name": "sim_kalshi_loopback_deltas",
            "value": round(rate),
            "unit": "frames/s",
            "target": ">= 100k/s",
            "note": "world in another process -> one raw aiohttp client, receive only, 10 markets",
        },
        {
            "name": "sim_kalshi_world_cpu_rate",
            "value": round(frames / world_cpu) if world_cpu else 0,
            "unit": "frames/cpu-s",
            "target": ">= 150k/cpu-s",
            "note": "frames the world generated, encoded and wrote per CPU second of its process",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
