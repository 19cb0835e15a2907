"""``arbkit demo``: the end-to-end demo behind ``make demo``.

Starts the embedded world (``--seed``, ``--faults`` as `arbkit sim`), records about a minute
of everything (Kalshi over WebSocket and REST, the spot venues, the BRTI replica) into
``data/recordings/<session>/``, prints the session summary, writes the session's latency
report beside it (`arbkit report`) and says which notebook to open next.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from arbkit.commands.record import (
    add_length_arguments,
    add_world_arguments,
    length_s,
    record_and_summarize,
)
from arbkit.commands.report import make_report
from arbkit.core.errors import ConfigError
from arbkit.session.record import RecordConfig

HELP = "the end-to-end demo behind `make demo` (embedded world, ~60 s recording)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_length_arguments(parser, minutes=1.0)
    parser.add_argument(
        "--out", type=Path, default=Path("data/recordings"), help="where the session goes"
    )
    add_world_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.env != "sim":
        msg = "the demo runs on the embedded world only; use `arbkit record --env ...` instead"
        raise ConfigError(msg)
    path, code = record_and_summarize(args, RecordConfig(seconds=length_s(args), out=args.out))
    if code:
        return code
    page, summary = make_report(path)
    print(f"\n{summary['headline']}\nreport written to {page}")
    print(f'read it in Python: arbkit.open_session("{path}").frame("kalshi_book")')
    print(
        "next: .venv/bin/jupyter lab notebooks/ and open 02_rest_vs_websocket.ipynb "
        f'(set SESSIONS = "{path}" in its parameters cell; data/sample is the default)'
    )
    return 0
