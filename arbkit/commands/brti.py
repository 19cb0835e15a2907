"""``arbkit brti``: the BRTI replica, one value or a stream, with a per-venue breakdown.

``--books FILE.json`` computes the index from saved venue books, treated as fresh at the time
of the call:  ``{"venue": {"bids": [[price, size], ...], "asks": [...]}, ...}`` with prices and
sizes as decimal strings or JSON numbers (extra fields after size, such as order counts, are
ignored). Without ``--books`` the command reads the live venue feeds (`live`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from arbkit.core.book import BookView, Level
from arbkit.core.clock import now_ns
from arbkit.core.errors import ArbkitError
from arbkit.core.fixed import SPOT_DIGITS, parse_number
from arbkit.index.params import PARAMS
from arbkit.index.proxy import median_mid, vw_mid
from arbkit.index.report import render, result_dict
from arbkit.index.rti import RtiCalculator

HELP = "one-shot or streaming BRTI replica with a per-venue breakdown"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--books",
        type=Path,
        metavar="FILE.json",
        help='compute from saved books: {"venue": {"bids": [[price, size], ...], "asks": [...]}}',
    )
    parser.add_argument(
        "--json", action="store_true", help="print a machine-readable result instead of a table"
    )
    parser.add_argument(
        "--index", choices=list(PARAMS), default="BRTI", help="which RTI to compute (default BRTI)"
    )
    parser.add_argument("--stream", action="store_true", help="keep printing values")
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between printed values when streaming (default 5)",
    )
    parser.add_argument(
        "--minutes", type=float, metavar="M", help="stop streaming after M minutes (default: never)"
    )


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        msg = f"--interval must be positive, got {args.interval:g}"
        raise ArbkitError(msg)
    if args.minutes is not None and args.minutes <= 0:
        msg = f"--minutes must be positive, got {args.minutes:g}"
        raise ArbkitError(msg)
    if args.books is None:
        return live(args)
    if args.stream:
        msg = "--books computes one value from saved books; drop --stream (or --books to stream)"
        raise ArbkitError(msg)
    path = args.books
    return stream(lambda t: load_books(path, t), args)


def stream(source: Callable[[int], Sequence[BookView]], args: argparse.Namespace) -> int:
    """Compute and print the index from ``source(now_ns)`` once, or with ``--stream`` every
    ``--interval`` seconds until ``--minutes`` have passed (or Ctrl-C).

    One calculator serves every tick, so the potentially-erroneous state carries over. A
    one-shot ``--json`` prints one indented object; streaming prints one JSON object per line.
    """
    params = PARAMS[args.index]
    calculator = RtiCalculator(params)
    console = Console()
    end = None if args.minutes is None else time.monotonic() + args.minutes * 60
    while True:
        t = now_ns()
        books = source(t)
        result = calculator.calculate(books, t)
        proxies = [median_mid(books, t, params=params), vw_mid(books, t, params=params)]
        if args.json:
            option = orjson.OPT_APPEND_NEWLINE | (0 if args.stream else orjson.OPT_INDENT_2)
            sys.stdout.write(orjson.dumps(result_dict(result, proxies), option=option).decode())
            sys.stdout.flush()
        else:
            render(result, console, proxies)
        if not args.stream or (end is not None and time.monotonic() + args.interval > end):
            return 0
        time.sleep(args.interval)


def live(args: argparse.Namespace) -> int:
    """One value, or a stream every ``--interval`` seconds, from the live venue feeds.

    Needs the spot feeds (``arbkit.venues``) and, for ``--env sim``, the embedded world's spot
    servers. Once wired: start the feeds for ``args.env``, then
    ``return stream(lambda t: [feed.book.view() for feed in feeds], args)``.
    """
    msg = (
        "live BRTI needs the spot feeds, which are not wired into this command yet; "
        "use --books FILE.json to compute the index from saved books"
    )
    raise ArbkitError(msg)


def load_books(path: Path, updated_ns: int) -> list[BookView]:
    """Saved venue books from a JSON file, as `BookView`s stamped ``updated_ns``."""
    try:
        text = path.read_text()
    except OSError as exc:
        msg = f"cannot read books file {str(path)!r}: {exc.strerror or exc}"
        raise ArbkitError(msg) from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        msg = f"{path}: not valid JSON ({exc}); expected {_SHAPE}"
        raise ArbkitError(msg) from None
    if not isinstance(data, dict) or not data:
        msg = f"{path}: no venues; expected {_SHAPE}"
        raise ArbkitError(msg)
    books = []
    for venue, book in data.items():
        if not isinstance(book, dict) or "bids" not in book or "asks" not in book:
            msg = f"{path}: venue {venue!r} must be an object with 'bids' and 'asks' lists"
            raise ArbkitError(msg)
        bids = _levels(path, venue, "bids", book["bids"])
        asks = _levels(path, venue, "asks", book["asks"])
        books.append(BookView(venue, bids[::-1], asks, updated_ns))
    return books


_SHAPE = '{"venue": {"bids": [[price, size], ...], "asks": [[price, size], ...]}, ...}'


def _levels(path: Path, venue: str, side: str, raw: Any) -> tuple[Level, ...]:
    """One side's levels sorted by ascending price; zero sizes dropped."""
    where = f"{path}: venue {venue!r} {side}"
    if not isinstance(raw, list):
        msg = f"{where} must be a list of [price, size] pairs"
        raise ArbkitError(msg)
    levels: dict[int, int] = {}
    for i, level in enumerate(raw):
        if not isinstance(level, list) or len(level) < 2:
            msg = f"{where}[{i}] must be a [price, size] pair, got {level!r}"
            raise ArbkitError(msg)
        price = _number(f"{where}[{i}] price", level[0])
        size = _number(f"{where}[{i}] size", level[1])
        if price <= 0 or size < 0:
            msg = f"{where}[{i}]: price must be positive and size not negative, got {level!r}"
            raise ArbkitError(msg)
        if price in levels:
            msg = f"{where}: price {level[0]} appears twice; give one level per price"
            raise ArbkitError(msg)
        levels[price] = size
    return tuple((p, s) for p, s in sorted(levels.items()) if s)


def _number(where: str, value: Any) -> int:
    try:
        if isinstance(value, str) and not value.strip(" -+"):
            raise ValueError(value)
        return parse_number(value, SPOT_DIGITS)
    except (ValueError, TypeError, ArithmeticError):
        msg = f"{where}: {value!r} is not a decimal number with at most 8 decimal places"
        raise ArbkitError(msg) from None
