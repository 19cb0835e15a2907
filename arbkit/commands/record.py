"""``arbkit record``: record Kalshi (WebSocket and REST), spot books and the BRTI replica."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from arbkit.core.config import (
    VENUES,
    Credentials,
    Endpoints,
    Env,
    apply_overrides,
    default_endpoints,
)
from arbkit.core.storage import open_session
from arbkit.session.record import RecordConfig, format_progress, record
from arbkit.session.summary import format_summary, summarize
from arbkit.sim.world import World
from arbkit.venues.kalshi.markets import BTC_SERIES

HELP = "record Kalshi (WebSocket and REST), spot books and the BRTI replica"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--series",
        nargs="+",
        choices=BTC_SERIES,
        default=list(BTC_SERIES),
        help="Kalshi series to record (default: all three)",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument(
        "--rest-interval", type=float, default=1.0, help="seconds between REST book polls"
    )
    parser.add_argument(
        "--venues",
        nargs="+",
        choices=VENUES,
        default=list(VENUES),
        help="spot venues for the BRTI replica (default: all constituents)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("data/recordings"), help="where sessions are written"
    )


@contextlib.asynccontextmanager
async def environment(env: Env) -> AsyncIterator[tuple[Endpoints, Credentials | None]]:
    """Endpoints and credentials of ``env``; for ``sim`` an embedded world runs meanwhile."""
    if env is Env.SIM:
        async with World() as world:
            yield apply_overrides(world.endpoints), world.credentials
    else:
        yield apply_overrides(default_endpoints(env)), Credentials.from_env()


async def recording(args: argparse.Namespace, config: RecordConfig) -> Path:
    """Run one recording with progress on stderr; Ctrl-C ends it cleanly."""
    env = Env.parse(args.env)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with environment(env) as (endpoints, credentials):
        print(
            f"recording {env.value} for {config.seconds:.0f} s into {config.out}/ ...",
            file=sys.stderr,
        )
        return await record(
            config,
            endpoints,
            credentials,
            env=env,
            stop=stop,
            progress=lambda p: print(format_progress(p), file=sys.stderr, flush=True),
        )


def record_and_summarize(args: argparse.Namespace, config: RecordConfig) -> Path:
    """Record, then print the session summary and where it was written."""
    path = asyncio.run(recording(args, config))
    print(format_summary(summarize(open_session(path))))
    print(f"\nsession written to {path}")
    return path


def run(args: argparse.Namespace) -> int:
    config = RecordConfig(
        series=tuple(args.series),
        seconds=args.minutes * 60.0,
        rest_interval=args.rest_interval,
        venues=tuple(args.venues),
        out=args.out,
    )
    record_and_summarize(args, config)
    return 0
