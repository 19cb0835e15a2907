"""``arbkit check``: connect, authenticate, subscribe, measure latency and data quality.

Runs the live pipeline for ``--seconds`` (on the embedded world by default, ``--faults`` and
``--seed`` as `arbkit sim`; progress on stderr every 5 s), prints a pass/fail table
(``--json``: one object with every check's name, passed, figure and threshold, and whether
all passed) and exits 0 only when every check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import orjson

from arbkit.commands.record import add_venues_argument, add_world_arguments, venues_of
from arbkit.core.config import Env
from arbkit.core.errors import ConfigError
from arbkit.session.check import format_checks, run_checks
from arbkit.session.environment import environment
from arbkit.session.pipeline import PipelineConfig
from arbkit.venues.kalshi.markets import BTC_SERIES

HELP = "validate connectivity, authentication, latency and data quality"

EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="how long to observe (default 20)"
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--series",
        nargs="+",
        choices=BTC_SERIES,
        default=["KXBTC15M"],
        help="Kalshi series to follow (default KXBTC15M)",
    )
    add_venues_argument(parser, "spot venues to check (default all; none: Kalshi alone)")
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the session here (default: discarded)"
    )
    add_world_arguments(parser)


async def _check(args: argparse.Namespace, out: Path) -> int:
    config = PipelineConfig(
        series=tuple(args.series), venues=venues_of(args.venues), out=out, rest_interval=1.0
    )
    config.validate()
    async with environment(Env.parse(args.env), seed=args.seed, faults=args.faults) as env:
        print(f"checking {env.env} for {args.seconds:g} s ...", file=sys.stderr)
        checks = await run_checks(
            config,
            env,
            args.seconds,
            on_progress=lambda p: print(p.line(args.seconds), file=sys.stderr, flush=True),
        )
    if args.json:
        body = {"passed": all(c.passed for c in checks), "checks": [c.to_json() for c in checks]}
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(format_checks(checks))
    return 0 if all(c.passed for c in checks) else EXIT_FAILED


def run(args: argparse.Namespace) -> int:
    if not args.seconds > 0:
        msg = f"--seconds must be positive, got {args.seconds:g}"
        raise ConfigError(msg)
    if args.out is not None:
        return asyncio.run(_check(args, args.out))
    with tempfile.TemporaryDirectory(prefix="arbkit-check-") as tmp:
        return asyncio.run(_check(args, Path(tmp)))
