"""``arbkit demo``: the end-to-end demo behind ``make demo``.

Starts the embedded world, records about a minute of everything (Kalshi over WebSocket and
REST, the spot venues, the BRTI replica) into ``data/recordings/<session>/`` and prints the
session summary with the first REST-vs-WebSocket latency figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from arbkit.commands.record import record_and_summarize
from arbkit.core.config import VENUES
from arbkit.core.errors import ConfigError
from arbkit.session.record import RecordConfig
from arbkit.venues.kalshi.markets import BTC_SERIES

HELP = "the end-to-end demo behind `make demo` (embedded world, ~60 s recording)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to record")
    parser.add_argument(
        "--out", type=Path, default=Path("data/recordings"), help="where the session goes"
    )


def run(args: argparse.Namespace) -> int:
    if args.env != "sim":
        msg = "the demo runs on the embedded world only; use `arbkit record --env ...` instead"
        raise ConfigError(msg)
    config = RecordConfig(
        series=BTC_SERIES, seconds=args.seconds, venues=VENUES, out=args.out, rest_interval=1.0
    )
    path = record_and_summarize(args, config)
    print(f'read it in Python: arbkit.open_session("{path}").frame("kalshi_book")')
    return 0
