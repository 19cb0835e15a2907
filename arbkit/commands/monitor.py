"""``arbkit monitor [SERIES] [BRTI_INTERVAL]``: the live view, recording the session.

On a terminal the view (replica and venues, markets with fair value, edge and signal,
connection health) refreshes in place every BRTI_INTERVAL seconds; otherwise one plain block
of lines is printed per interval. Ctrl-C (or SIGTERM) stops it: the session is closed
``interrupted`` with its data, the summary printed, and the exit code is 130 (143).
"""

from __future__ import annotations

import argparse
import asyncio

from rich.console import Console
from rich.live import Live

from arbkit.commands.record import (
    EXIT_SIGNAL,
    add_session_arguments,
    print_summary,
    stop_on_signals,
    venues_of,
)
from arbkit.core.config import Env
from arbkit.core.errors import ConfigError
from arbkit.session.environment import environment
from arbkit.session.monitor import DEFAULT_SERIES, MonitorConfig, MonitorResult, monitor
from arbkit.session.monitor_view import MonitorState, plain_lines, render
from arbkit.session.record import RecordingFailed
from arbkit.venues.kalshi.markets import BTC_SERIES

HELP = "live view: quotes, BRTI replica, fair values, signals, health; records the session"

DEFAULT_INTERVAL_S = 1.0
FIXED_LINES = 27
"""Screen lines besides the market rows: the view's header, replica (8 venues), titles,
health and footer (24), the start line above it, the "... and N more" line and a replica
note (a fallback or no value)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "series",
        nargs="?",
        default=DEFAULT_SERIES,
        metavar="SERIES",
        help=f"Kalshi series: {', '.join(BTC_SERIES)} (default {DEFAULT_SERIES})",
    )
    parser.add_argument(
        "interval",
        nargs="?",
        default=None,
        metavar="BRTI_INTERVAL",
        help=f"seconds between refreshes of the view (default {DEFAULT_INTERVAL_S:g})",
    )
    parser.add_argument(
        "--brti-interval",
        default=None,
        metavar="S",
        help="the same as BRTI_INTERVAL",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this long (default: Ctrl+C)"
    )
    add_session_arguments(parser)


def interval_of(args: argparse.Namespace) -> float:
    """BRTI_INTERVAL or ``--brti-interval`` (both only if they agree), in seconds."""
    given = [v for v in (args.interval, args.brti_interval) if v is not None]
    if len(given) > 1 and given[0] != given[1]:
        msg = f"BRTI_INTERVAL {given[0]} and --brti-interval {given[1]} disagree; give one"
        raise ConfigError(msg)
    if not given:
        return DEFAULT_INTERVAL_S
    try:
        value = float(given[0])
    except ValueError:
        msg = f"BRTI_INTERVAL must be a number of seconds, got {given[0]!r}"
        raise ConfigError(msg) from None
    return value


def config_of(args: argparse.Namespace) -> MonitorConfig:
    series = args.series.upper()
    if series not in BTC_SERIES:
        msg = f"unknown series {args.series!r}: choose one of {', '.join(BTC_SERIES)}"
        raise ConfigError(msg)
    config = MonitorConfig(
        series=(series,),
        brti_interval=interval_of(args),
        seconds=args.seconds,
        rest_interval=args.rest_interval,
        venues=venues_of(args.venues),
        out=args.out,
    )
    config.validate()
    return config


async def _watch(args: argparse.Namespace, config: MonitorConfig) -> tuple[MonitorResult, int]:
    env = Env.parse(args.env)
    stop, signals = stop_on_signals()
    console = Console()
    err = Console(stderr=True)

    def announce() -> None:
        err.print(f"monitoring {' '.join(config.series)} on {env.value} (Ctrl+C stops) ...")

    async with environment(env, seed=args.seed, faults=args.faults) as resolved:
        if console.is_terminal:
            with Live(console=console, auto_refresh=False, transient=False) as live:

                def show(state: MonitorState) -> None:
                    rows = max(1, console.size.height - FIXED_LINES)
                    live.update(render(state, max_markets=rows), refresh=True)

                result = await monitor(config, resolved, show=show, stop=stop, announce=announce)
        else:

            def show(state: MonitorState) -> None:
                print("\n".join(plain_lines(state)), flush=True)

            result = await monitor(config, resolved, show=show, stop=stop, announce=announce)
    return result, EXIT_SIGNAL + signals[0] if signals else 0


def run(args: argparse.Namespace) -> int:
    config = config_of(args)
    try:
        result, code = asyncio.run(_watch(args, config))
    except RecordingFailed as failed:
        print_summary(failed.path)
        raise
    print()
    print_summary(result.path)
    print(f"signals: {result.decisions:,} decisions, {result.buys:,} to buy")
    return code
