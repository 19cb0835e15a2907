"""``arbkit record``: record Kalshi (WebSocket and REST), spot books and the BRTI replica."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from arbkit.core.config import VENUES, Env
from arbkit.core.errors import ConfigError
from arbkit.core.storage import Session
from arbkit.session.environment import environment
from arbkit.session.record import RecordConfig, RecordingFailed, record
from arbkit.session.summary import format_summary, summarize
from arbkit.venues.kalshi.markets import BTC_SERIES

HELP = "record Kalshi (WebSocket and REST), spot books and the BRTI replica"

NO_VENUES = "none"
"""``--venues none``: record Kalshi alone (no spot feeds, no replica)."""


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    """``--seed`` and ``--faults`` of the embedded world (``--env sim``)."""
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the embedded world (default 1)"
    )
    parser.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="faults of the embedded world, e.g. 'drop=10s,kalshi.gap=0.01' (see arbkit sim)",
    )


def add_length_arguments(parser: argparse.ArgumentParser, *, minutes: float | None) -> None:
    """``--minutes`` or ``--seconds`` (one of them), defaulting to ``minutes``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--minutes", type=float, default=None, help=f"how long (default {minutes:g} min)"
    )
    group.add_argument("--seconds", type=float, default=None, help="how long, in seconds")
    parser.set_defaults(default_seconds=None if minutes is None else minutes * 60.0)


def length_s(args: argparse.Namespace) -> float:
    """The run length in seconds from ``--minutes``/``--seconds``."""
    if args.seconds is not None:
        return float(args.seconds)
    if args.minutes is not None:
        return float(args.minutes) * 60.0
    return float(args.default_seconds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--series",
        nargs="+",
        choices=BTC_SERIES,
        default=list(BTC_SERIES),
        help="Kalshi series to record (default: all three)",
    )
    add_length_arguments(parser, minutes=10.0)
    add_session_arguments(parser)


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    """What every recording command takes beside its length: ``--rest-interval``,
    ``--venues``, ``--out``, and the embedded world's ``--seed``/``--faults``."""
    parser.add_argument(
        "--rest-interval", type=float, default=1.0, help="seconds between REST book polls"
    )
    add_venues_argument(
        parser, "spot venues for the BRTI replica (default: all constituents; none: Kalshi alone)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("data/recordings"), help="where sessions are written"
    )
    add_world_arguments(parser)


def add_venues_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--venues``: spot venue names, or ``none`` for Kalshi alone (see `venues_of`)."""
    parser.add_argument(
        "--venues",
        nargs="+",
        choices=[*VENUES, NO_VENUES],
        default=list(VENUES),
        help=help_text,
    )


def venues_of(chosen: list[str]) -> tuple[str, ...]:
    """``--venues`` as a tuple; ``none`` (alone) gives no venues."""
    if NO_VENUES in chosen:
        if len(chosen) > 1:
            msg = "--venues none records Kalshi alone; do not list venues beside it"
            raise ConfigError(msg)
        return ()
    return tuple(dict.fromkeys(chosen))


EXIT_SIGNAL = 128
"""A run ended by a signal exits 128 + its number (130 for SIGINT, 143 for SIGTERM)."""


def stop_on_signals() -> tuple[asyncio.Event, list[int]]:
    """An event that Ctrl-C or SIGTERM sets (in the running loop), and the list of the signals
    received (for the exit code ``EXIT_SIGNAL + signum``)."""
    stop = asyncio.Event()
    signals: list[int] = []

    def interrupt(signum: int) -> None:
        signals.append(signum)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, interrupt, signum)
    return stop, signals


async def recording(args: argparse.Namespace, config: RecordConfig) -> tuple[Path, int]:
    """Run one recording with progress on stderr; returns its path and the exit code.

    Ctrl-C or SIGTERM ends it early, closed ``interrupted`` with its data kept.
    """
    config.validate()  # before a world starts
    env = Env.parse(args.env)
    stop, signals = stop_on_signals()
    async with environment(env, seed=args.seed, faults=args.faults) as resolved:
        print(
            f"recording {env.value} for {config.seconds:g} s into {config.out}/ ...",
            file=sys.stderr,
        )
        path = await record(
            config,
            resolved,
            stop=stop,
            progress=lambda p: print(p.line(config.seconds), file=sys.stderr, flush=True),
        )
    return path, EXIT_SIGNAL + signals[0] if signals else 0


def record_and_summarize(args: argparse.Namespace, config: RecordConfig) -> tuple[Path, int]:
    """Record, then print the session summary and where it was written; returns the session
    path and the exit code (a failed recording raises after its summary is printed)."""
    try:
        path, code = asyncio.run(recording(args, config))
    except RecordingFailed as failed:
        print_summary(failed.path)
        raise
    print_summary(path)
    return path, code


def print_summary(path: Path) -> None:
    """The session summary and where it was written (read without `open_session`'s warning:
    the summary's status line says how a session that did not close cleanly ended)."""
    print(format_summary(summarize(Session(path))))
    print(f"\nsession written to {path}")


def run(args: argparse.Namespace) -> int:
    config = RecordConfig(
        series=tuple(args.series),
        seconds=length_s(args),
        rest_interval=args.rest_interval,
        venues=venues_of(args.venues),
        out=args.out,
    )
    return record_and_summarize(args, config)[1]
