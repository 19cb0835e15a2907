"""``arbkit sim generate``: a synthetic session of the embedded world, written in virtual time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from arbkit.session.generate import GenerateConfig, generate
from arbkit.sim.kalshi.wire import ERAS

HELP = "generate a synthetic session of the embedded world without sockets, in virtual time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = GenerateConfig()
    parser.add_argument("--hours", type=float, required=True, help="virtual hours to generate")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the whole world")
    parser.add_argument("--faults", default="", metavar="SPEC", help="faults, as for arbkit sim")
    parser.add_argument("--out", type=Path, default=d.out, help="where the session goes")
    parser.add_argument("--session-id", default=None, help="session directory name")
    parser.add_argument(
        "--maker-lag",
        type=float,
        default=d.maker_lag_s,
        metavar="S",
        help=f"seconds the market makers lag fair value (default {d.maker_lag_s:g})",
    )
    parser.add_argument(
        "--rest-cache",
        type=float,
        default=d.rest_cache_s,
        metavar="S",
        help=f"CDN cache seconds of REST order books (default {d.rest_cache_s:g})",
    )
    parser.add_argument(
        "--rest-interval",
        type=float,
        default=d.rest_interval_s,
        metavar="S",
        help=f"seconds between REST polls of each market (default {d.rest_interval_s:g})",
    )
    parser.add_argument(
        "--ws-delay-ms",
        type=float,
        default=d.ws_delay_ms,
        metavar="MS",
        help=f"median Kalshi WebSocket delivery delay (default {d.ws_delay_ms:g})",
    )
    parser.add_argument("--era", choices=ERAS, default=d.era, help="Kalshi wire era")


def run(args: argparse.Namespace) -> int:
    config = GenerateConfig(
        hours=args.hours,
        seed=args.seed,
        faults=args.faults,
        out=args.out,
        session_id=args.session_id,
        maker_lag_s=args.maker_lag,
        rest_cache_s=args.rest_cache,
        rest_interval_s=args.rest_interval,
        ws_delay_ms=args.ws_delay_ms,
        era=args.era,
    )
    config.validate()
    columns = (
        TextColumn("generating"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} virtual s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("generate", total=config.hours * 3600)
        path = generate(config, progress=lambda done, _total: bar.update(task, completed=done))
    print(f"session written to {path}", file=sys.stderr)
    print(path)
    return 0
