"""The ``arbkit`` command line.

Every command has ``--help`` and ``--env sim|demo|prod`` (default ``sim``: the embedded world,
started in-process). A user mistake or an environment problem prints one clear message and
exits non-zero; it never shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from arbkit import __version__
from arbkit.core.errors import ArbkitError

# name -> module under arbkit.commands (its HELP is the command's description), in DESIGN order
COMMANDS: dict[str, str] = {
    "sim": "sim",
    "record": "record",
    "monitor": "monitor",
    "brti": "brti",
    "check": "check",
    "report": "report",
    "backtest": "backtest",
    "demo": "demo",
}
EXIT_USAGE = 2
EXIT_FAILURE = 1


def _load(module: str) -> ModuleType:
    return importlib.import_module(f"arbkit.commands.{module}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arbkit",
        description=(
            "Record, replay and backtest latency arbitrage between Kalshi's bitcoin markets "
            "and the CF Benchmarks BRTI index."
        ),
    )
    parser.add_argument("--version", action="version", version=f"arbkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        help_text = _load(module).HELP
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--env",
            choices=["sim", "demo", "prod"],
            default="sim",
            help="sim: the embedded world (default); demo/prod: Kalshi's real hosts",
        )
        _load(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = _load(COMMANDS[args.command]).run(args)
    except ArbkitError as exc:
        print(f"arbkit {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"arbkit {args.command}: interrupted", file=sys.stderr)
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
