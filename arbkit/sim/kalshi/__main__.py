"""Run the Kalshi side of the world alone: ``python -m arbkit.sim.kalshi [options]``.

Prints one JSON line with ``rest_url``, ``ws_url``, ``key_id`` and ``private_key_path`` (a key
pair generated into ``--key-dir``), then serves until interrupted. For the loopback
benchmark, ``--delta-rate inf`` streams single-level ``orderbook_delta`` frames as fast as the
subscribers read them (``--delta-rate 50000`` for a fixed rate).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
import tempfile
from pathlib import Path

import orjson

from arbkit.core import clock
from arbkit.sim.faults import FaultPlan
from arbkit.sim.kalshi.server import KalshiSim
from arbkit.sim.kalshi.wire import ERAS
from arbkit.sim.path import PricePath


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m arbkit.sim.kalshi", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--era", choices=ERAS, default="current")
    p.add_argument("--faults", default="", help="fault spec, e.g. 'drop=10s,gap=0.01'")
    p.add_argument("--delta-rate", type=float, default=0.0, help="high-rate deltas/s; inf = max")
    p.add_argument("--rest-cache", type=float, default=15.0, help="unsigned REST cache age (s)")
    p.add_argument("--key-dir", type=Path, default=None, help="where to write the private key")
    return p


async def _serve(args: argparse.Namespace) -> None:
    path = PricePath(args.seed, clock.now_ns())
    sim = KalshiSim(
        index=path.price_at,
        seed=args.seed,
        era=args.era,
        faults=FaultPlan.parse(args.faults).for_target("kalshi"),
        rest_cache_s=args.rest_cache,
        delta_rate=math.inf if math.isinf(args.delta_rate) else args.delta_rate,
    )
    with contextlib.ExitStack() as cleanup:  # a generated key dir goes with the world
        key_dir = args.key_dir or Path(
            cleanup.enter_context(tempfile.TemporaryDirectory(prefix="arbkit-kalshi-"))
        )
        creds = sim.generate_credentials(key_dir)
        await sim.start(args.host, args.port)
        info = {
            "rest_url": sim.rest_url,
            "ws_url": sim.ws_url,
            "key_id": creds.key_id,
            "private_key_path": str(creds.private_key_path),
        }
        sys.stdout.write(orjson.dumps(info).decode() + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # the key dir goes on every exit
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await sim.stop()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
