"""``arbkit sim``: run the embedded world on loopback and print its endpoints as JSON.

The JSON is printed only once the world is ready (every Kalshi series has an open, quoted
market; every spot book is quoted), so a client started on it sees markets at once. SIGTERM
and SIGINT stop the world cleanly: its generated private key and temp dir go with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal

from arbkit.commands import generate
from arbkit.core.errors import ConfigError
from arbkit.sim.faults import FaultPlan
from arbkit.sim.world import World

HELP = "run the embedded exchange world on loopback and print its endpoints"
MAX_PORT = 65_535


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the price path and makers")
    parser.add_argument(
        "--faults",
        default="",
        metavar="SPEC",
        help="faults on demand, e.g. 'drop=10s,kalshi.gap=0.01,kraken.corrupt=0.02'",
    )
    parser.add_argument(
        "--era",
        choices=["legacy", "transition", "current"],
        default="current",
        help="Kalshi wire era to speak (default current)",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)"
    )
    parser.add_argument(
        "--rest-cache",
        type=float,
        default=15.0,
        metavar="S",
        help="CDN cache age of Kalshi's unsigned REST reads in seconds (default 15; 0 = none)",
    )
    parser.add_argument(
        "--maker-lag",
        type=float,
        default=5.0,
        metavar="S",
        help="how many seconds Kalshi's market makers lag fair value (default 5)",
    )
    parser.add_argument(
        "--ws-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="one-way delivery delay of every Kalshi WebSocket frame in seconds (default 0)",
    )
    parser.add_argument(
        "--maintenance",
        action="store_true",
        help="/exchange/status follows Kalshi's weekly Thursday 03:00-05:00 ET trading pause",
    )
    sub = parser.add_subparsers(dest="sim_command", metavar="{generate}")
    generate.add_arguments(
        sub.add_parser("generate", help=generate.HELP, description=generate.HELP)
    )


def _non_negative(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        msg = f"{name} must be a non-negative number of seconds (got {value})"
        raise ConfigError(msg)


def validate(args: argparse.Namespace) -> FaultPlan:
    """Check every option; the parsed fault plan. `ConfigError` says what was wrong."""
    if not 0 <= args.port <= MAX_PORT:
        msg = f"--port must be 0..{MAX_PORT} (0 = a free port), got {args.port}"
        raise ConfigError(msg)
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        msg = f"--seconds must be a positive number of seconds (got {args.seconds})"
        raise ConfigError(msg)
    _non_negative("--rest-cache", args.rest_cache)
    _non_negative("--maker-lag", args.maker_lag)
    _non_negative("--ws-delay", args.ws_delay)
    return FaultPlan.parse(args.faults)


async def _serve(args: argparse.Namespace, plan: FaultPlan) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    world = World(
        seed=args.seed,
        faults=plan,
        era=args.era,
        rest_cache_s=args.rest_cache,
        maker_lag_s=args.maker_lag,
        ws_delay_s=args.ws_delay,
        maintenance=args.maintenance,
    )
    try:
        await world.start(args.host, args.port)
        print(json.dumps(world.describe(), indent=2), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=args.seconds)
    finally:
        await world.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    if args.sim_command == "generate":
        return generate.run(args)
    if args.env != "sim":
        msg = "arbkit sim runs the embedded world only; drop --env or use --env sim"
        raise ConfigError(msg)
    plan = validate(args)
    asyncio.run(_serve(args, plan))
    return 0
