"""``arbkit sim``: run the embedded world on loopback and print its endpoints as JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from arbkit.commands import generate
from arbkit.core.errors import ConfigError
from arbkit.sim.faults import FaultPlan
from arbkit.sim.world import World

HELP = "run the embedded exchange world on loopback and print its endpoints"


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
    sub = parser.add_subparsers(dest="sim_command", metavar="{generate}")
    generate.add_arguments(
        sub.add_parser("generate", help=generate.HELP, description=generate.HELP)
    )


async def _serve(args: argparse.Namespace) -> None:
    world = World(seed=args.seed, faults=FaultPlan.parse(args.faults), era=args.era)
    await world.start(args.host, args.port)
    try:
        print(json.dumps(world.describe(), indent=2), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), timeout=args.seconds)
    finally:
        await world.stop()


def run(args: argparse.Namespace) -> int:
    if args.sim_command == "generate":
        return generate.run(args)
    if args.env != "sim":
        msg = "arbkit sim runs the embedded world only; drop --env or use --env sim"
        raise ConfigError(msg)
    asyncio.run(_serve(args))
    return 0
