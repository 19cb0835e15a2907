"""``arbkit brti``: the BRTI replica, one value or a stream, with a per-venue breakdown.

``--books FILE.json`` computes the index from saved venue books, treated as fresh at the time
of the call:  ``{"venue": {"bids": [[price, size], ...], "asks": [...]}, ...}`` with prices and
sizes as decimal strings or JSON numbers (extra fields after size, such as order counts, are
ignored). Without ``--books`` the command reads the live venue feeds (`live`): with ``--env
sim`` (the default) from the embedded world started in-process, with ``--env prod`` or ``demo``
from the venues' public endpoints (no keys needed; ``ARBKIT_<VENUE>_WS_URL`` /
``ARBKIT_<VENUE>_REST_URL`` override them in every environment).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from arbkit.core.book import BookView, Level
from arbkit.core.clock import now_ns
from arbkit.core.config import VENUES, Endpoint, Env
from arbkit.core.errors import ArbkitError, ConfigError
from arbkit.core.fixed import SPOT_DIGITS, parse_number
from arbkit.core.sink import NullSink
from arbkit.index.live import LiveIndex
from arbkit.index.params import PARAMS
from arbkit.index.proxy import ProxyResult, median_mid, vw_mid
from arbkit.index.report import render, result_dict
from arbkit.index.rti import RtiCalculator, RtiResult
from arbkit.session.environment import environment

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
    parser.add_argument(
        "--venues",
        metavar="LIST",
        help=f"live: comma-separated venues to read (default all: {','.join(VENUES)})",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=20.0,
        metavar="S",
        help="live: seconds to wait for every venue's first book before printing (default 20)",
    )


def run(args: argparse.Namespace) -> int:
    if not args.interval > 0:  # NaN too
        msg = f"--interval must be positive, got {args.interval:g}"
        raise ArbkitError(msg)
    if args.minutes is not None and not args.minutes > 0:
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
        emit(
            result,
            [median_mid(books, t, params=params), vw_mid(books, t, params=params)],
            args,
            console,
        )
        if not args.stream or (end is not None and time.monotonic() + args.interval > end):
            return 0
        time.sleep(args.interval)


def emit(
    result: RtiResult,
    proxies: Sequence[ProxyResult],
    args: argparse.Namespace,
    console: Console,
    extra: dict[str, Any] | None = None,
) -> None:
    """Print one calculation: a table, or with ``--json`` one indented object (one-shot) or
    one JSON line (streaming); ``extra`` adds keys to the JSON form."""
    if args.json:
        option = orjson.OPT_APPEND_NEWLINE | (0 if args.stream else orjson.OPT_INDENT_2)
        body = result_dict(result, proxies) | (extra or {})
        sys.stdout.write(orjson.dumps(body, option=option).decode())
        sys.stdout.flush()
    else:
        render(result, console, proxies)


def live(args: argparse.Namespace) -> int:
    """One value, or a stream every ``--interval`` seconds, from the live venue feeds.

    The replica is calculated every 200 ms (one `LiveIndex`, so the potentially-erroneous
    state carries over as CF's does); the command prints the latest calculation once every
    venue has sent its first book (or after ``--wait`` seconds, naming the venues still
    missing), then every ``--interval`` seconds with ``--stream``.
    """
    if args.index != "BRTI":
        msg = (
            f"live mode computes the BRTI only (the feeds subscribe BTC/USD); use --books to "
            f"compute {args.index} from saved books"
        )
        raise ArbkitError(msg)
    if not args.wait > 0:
        msg = f"--wait must be positive, got {args.wait:g}"
        raise ArbkitError(msg)
    venues = parse_venues(args.venues)
    return asyncio.run(_live(args, Env.parse(args.env), venues))


def parse_venues(text: str | None) -> list[str]:
    """``--venues`` as a list of known venues (default: every constituent)."""
    if text is None:
        return list(VENUES)
    chosen = [v.strip().lower() for v in text.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VENUES]
    if unknown or not chosen:
        msg = (
            f"--venues: unknown venue(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(VENUES)}"
        )
        raise ArbkitError(msg)
    return list(dict.fromkeys(chosen))


def check_endpoints(endpoints: dict[str, Endpoint], venues: Sequence[str]) -> None:
    """Refuse URLs a feed could never connect to, naming the variable that set them."""
    for venue in venues:
        endpoint = endpoints[venue]
        for kind, url, schemes in (
            ("WS", endpoint.ws, ("ws://", "wss://")),
            ("REST", endpoint.rest, ("http://", "https://")),
        ):
            if not url.startswith(schemes):
                msg = (
                    f"{venue} {kind} URL {url!r} must start with {' or '.join(schemes)}; "
                    f"fix ARBKIT_{venue.upper()}_{kind}_URL"
                )
                raise ConfigError(msg)


async def _live(args: argparse.Namespace, env: Env, venues: list[str]) -> int:
    async with contextlib.AsyncExitStack() as stack:
        resolved = await stack.enter_async_context(environment(env))
        endpoints = dict(resolved.endpoints.venues)
        check_endpoints(endpoints, venues)
        index = await stack.enter_async_context(LiveIndex(endpoints, NullSink(), venues=venues))
        err = Console(stderr=True)
        missing = await _wait_for_books(index, args.wait, err, env)
        if len(missing) == len(venues):
            msg = (
                f"no venue sent a book within {args.wait:g} s ({env} endpoints); check the "
                "network, or the ARBKIT_<VENUE>_WS_URL overrides"
            )
            raise ArbkitError(msg)
        if missing:
            err.print(
                f"no book from {', '.join(missing)} after {args.wait:g} s; "
                "shown as excluded, still trying"
            )
        code = await _print_ticks(index, args)
    return code


async def _print_ticks(index: LiveIndex, args: argparse.Namespace) -> int:
    """Print the next calculation, then with ``--stream`` the latest every ``--interval``."""
    console = Console()
    loop = asyncio.get_running_loop()
    end = None if args.minutes is None else loop.time() + args.minutes * 60
    tick = await index.next_tick()
    while True:
        if args.stream and not args.json:
            console.print(f"[dim]{_utc(tick.time_ns)}[/dim]")
        emit(tick.result, tick.proxies, args, console, {"waiting_for": index.missing()})
        if not args.stream or (end is not None and loop.time() + args.interval > end):
            return 0
        await asyncio.sleep(args.interval)
        tick = index.latest or tick


def _utc(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


async def _wait_for_books(index: LiveIndex, timeout: float, err: Console, env: Env) -> list[str]:
    """Wait for first books, showing which venues are still awaited (a spinner on a
    terminal, a line per change otherwise)."""
    total = len(index.feeds)

    def text(missing: list[str]) -> str:
        waiting = f" (waiting for {', '.join(missing)})" if missing else ""
        return f"{env}: first books from {total - len(missing)}/{total} venues{waiting}"

    if err.is_terminal:
        with err.status(text(index.missing())) as status:
            return await index.wait_ready(timeout, progress=lambda m: status.update(text(m)))
    return await index.wait_ready(timeout, progress=lambda m: err.print(text(m)))


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
