"""Same-machine comparison with cryptofeed 2.4.1: the same book frames through both libraries.

cryptofeed is not an arbkit dependency. Run this where it is importable, e.g. a scratch venv::

    python -m venv /tmp/cfvenv && /tmp/cfvenv/bin/pip install cryptofeed==2.4.1
    /tmp/cfvenv/bin/pip install -e . --no-deps && /tmp/cfvenv/bin/pip install msgspec orjson \\
        numpy polars pyarrow
    /tmp/cfvenv/bin/python -m bench cryptofeed        # from the repository root

Elsewhere `run` returns one row saying it was skipped. cryptofeed is only called (its feeds'
``message_handler`` coroutines, driven in-process over a list of frames, no sockets), never
copied. A symbol map is preset in its `Symbols` registry so constructing a feed makes no REST
call.

Frames:
- Coinbase: bench_spot's Advanced Trade ``l2_data`` frames (cryptofeed 2.4.1's ``Coinbase``
  targets ``wss://advanced-trade-ws.coinbase.com`` too). cryptofeed 2.4.1 builds its snapshot
  asks from levels with ``side == "ask"`` but the venue calls them ``"offer"`` (see the real
  capture), so it would start with no asks; it is given the same snapshot with ``"offer"``
  renamed (untimed) so both books hold the same levels.
- Kraken: cryptofeed 2.4.1's ``Kraken`` speaks WebSocket v1 (``wss://ws.kraken.com``, protocol
  1.8.x as captured 2021): `kraken_v1_frames` prints bench_spot's Kraken walk in that format
  (``[channelID, {"as": .., "bs": ..}, "book-1000", pair]``, updates with ``a``/``b`` levels
  ``[price, volume, timestamp]`` and the CRC32 as a decimal string ``c``). When both sides
  change Kraken sends two dicts, ``{"a": ..}, {"b": .., "c": ..}``; cryptofeed 2.4.1 only
  looks for ``c`` in the first dict, so it skips the check on those frames. It is therefore
  also measured on a variant with both sides merged into one dict (a CRC on every frame, the
  same work arbkit does on either variant). arbkit's v2 `KrakenFeed` runs on bench_spot's v2
  frames of the same walk.

Per frame cryptofeed parses with yapic.json (numbers as ``Decimal``), keeps ``Decimal`` books
in its C ``order_book``, builds a delta dict and awaits its (empty) callback list; it never
truncates Kraken's book to the subscribed depth (this walk stays within it). arbkit parses with
orjson/msgspec into exact ints, keeps sorted int books, emits rows to a `NullSink`, stamps
venue times and tracks validity. Both are timed with ``time.process_time`` over the updates
(the snapshot is applied untimed), best of 3 passes, each from a fresh book. Every run checks
that both end with the same levels (raises otherwise) and that every CRC passed.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import json
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from arbkit.core.book import ASK, BID, L2Book, Level
from arbkit.core.fixed import format_fixed
from arbkit.core.sink import NullSink
from arbkit.venues.coinbase import CoinbaseFeed
from arbkit.venues.kraken import KrakenFeed, KrakenV1Feed, checksum
from arbkit.venues.spot import SpotFeed
from bench.bench_spot import (
    ENDPOINT,
    FRAMES,
    _num,
    _seed,
    _throughput,
    _walk,
    coinbase_frames,
    kraken_frames,
)

VERSION = "2.4.1"
REPEAT = 3
V1_PAIR = "XBT/USD"
DEPTH = 1000


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def kraken_v1_frames(rng: random.Random) -> tuple[list[str], list[str]]:
    """bench_spot's Kraken walk as v1 frames with correct ``c`` checksums (price 5 dp, volume
    8 dp, as v1 printed XBT pairs; level times 1 ms apart): returns (the frames as Kraken sends
    them, the same frames with ``a`` and ``b`` merged into one dict). Each side stays within
    depth 1000 (checked), so no level falls out of the subscribed depth."""
    bids, asks = _seed(10**7)
    model = L2Book()
    frags: dict[str, dict[int, str]] = {BID: {}, ASK: {}}

    def level(side: str, p: int, s: int, n: int) -> str:
        pt, qt = _num(p, 5), _num(s, 8)
        model.set(side, p, s)
        if s:
            frags[side][p] = _digits(pt) + _digits(qt)
        else:
            frags[side].pop(p, None)
        return f'["{pt}","{qt}","{1786309548 + n // 1000}.{n % 1000 * 1000:06d}"]'

    def wrap(*parts: str) -> str:
        return f'[336,{",".join(parts)},"book-{DEPTH}","{V1_PAIR}"]'

    snap = (
        f'{{"as":[{",".join(level(ASK, p, s, 0) for p, s in asks)}],'
        f'"bs":[{",".join(level(BID, p, s, 0) for p, s in bids)}]}}'
    )
    sent, merged = [wrap(snap)], [wrap(snap)]
    for n, batch in enumerate(_walk(rng, 10**7), start=1):
        b = ",".join(level(side, p, s, n) for side, p, s in batch if side == BID)
        a = ",".join(level(side, p, s, n) for side, p, s in batch if side == ASK)
        crc = checksum(
            [frags[ASK][p] for p in model.asks.prices(10)],
            [frags[BID][p] for p in model.bids.prices(10)],
        )
        if a and b:
            sent.append(wrap(f'{{"a":[{a}]}}', f'{{"b":[{b}],"c":"{crc}"}}'))
            merged.append(wrap(f'{{"a":[{a}],"b":[{b}],"c":"{crc}"}}'))
        else:
            one = wrap(f'{{"{"a" if a else "b"}":[{a or b}],"c":"{crc}"}}')
            sent.append(one)
            merged.append(one)
    if max(len(model.bids), len(model.asks)) > DEPTH:
        msg = "the walk outgrew the subscribed depth: books would be truncated differently"
        raise AssertionError(msg)
    return sent, merged


# --- cryptofeed, driven in-process ---------------------------------------------------------


def _cryptofeed(cf: Any, exchange: str, mapping: dict[str, str], **options: Any) -> Any:
    """A cryptofeed feed for ``BTC-USD`` L2 books, no callbacks, no network."""
    cf.symbols.Symbols.set(exchange, mapping, {})
    cls = getattr(cf.exchanges, exchange.capitalize())
    return cls(symbols=["BTC-USD"], channels=[cf.defines.L2_BOOK], **options)


async def _replay(handler: Any, snapshot: str, frames: list[str]) -> float:
    """CPU seconds cryptofeed's ``handler`` takes over ``frames`` after an untimed snapshot."""
    await handler(snapshot, None, 0.0)  # neither feed reads the connection object
    started = time.process_time()
    for text in frames:
        await handler(text, None, 0.0)
    return time.process_time() - started


def _cryptofeed_rate(
    make: Callable[[], Any], snapshot: str, frames: list[str]
) -> tuple[float, Any]:
    """Frames/s (CPU time) of cryptofeed over ``frames``, best of `REPEAT` passes each on a new
    feed (the snapshot first, untimed); returns the rate and the last pass's book."""
    best, book = 0.0, None
    for _ in range(REPEAT):
        feed = make()
        elapsed = asyncio.run(_replay(feed.message_handler, snapshot, frames))
        best = max(best, len(frames) / elapsed)
        book = feed._l2_book["BTC-USD"]
    return best, book


def _e8(value: Decimal) -> int:
    scaled = value.scaleb(8)
    if scaled != scaled.to_integral_value():
        msg = f"{value} has more than 8 decimals"
        raise AssertionError(msg)
    return int(scaled)


def _same_book(what: str, theirs: Any, ours: L2Book) -> str:
    """Raise unless cryptofeed's book holds exactly arbkit's levels; a summary if it does."""
    for name, cf_side, side in (
        ("bids", theirs.book.bids, ours.bids),
        ("asks", theirs.book.asks, ours.asks),
    ):
        levels: list[Level] = [(_e8(p), _e8(s)) for p, s in cf_side.to_list()]
        if levels != side.top():
            msg = f"{what}: cryptofeed's {name} differ from arbkit's after the same frames"
            raise AssertionError(msg)
    bid, ask = (format_fixed(p or 0, 8, trim=True) for p in (ours.best_bid, ours.best_ask))
    return f"{len(ours.bids)}+{len(ours.asks)} levels, best {bid}/{ask}"


def _arbkit(feed: SpotFeed, frames: list[str]) -> tuple[float, L2Book]:
    rate = _throughput(feed, frames, repeat=REPEAT)
    return rate, next(iter(feed.books.values()))


def _json_us(frames: list[str]) -> float:
    """µs per stdlib ``json.loads`` of these frames: how fast this machine is."""
    started = time.process_time()
    for text in frames:
        json.loads(text)
    return (time.process_time() - started) / len(frames) * 1e6


def _row(name: str, value: float, target: str, note: str) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": "frames/s", "target": target, "note": note}


def run() -> list[dict[str, Any]]:
    if importlib.util.find_spec("cryptofeed") is None:
        note = (
            f"cryptofeed is not installed here (not an arbkit dependency): in a scratch venv, "
            f"pip install cryptofeed=={VERSION} and arbkit, then python -m bench cryptofeed"
        )
        return [
            {
                "name": "cryptofeed comparison",
                "value": "skipped",
                "unit": "",
                "target": "",
                "note": note,
            }
        ]
    cf = importlib.import_module("cryptofeed")
    for sub in ("defines", "exchanges", "symbols"):
        importlib.import_module(f"cryptofeed.{sub}")
    version = importlib.metadata.version("cryptofeed")
    label = f"cryptofeed {version}"
    common = f"{FRAMES} updates, 1000-level book, CPU time, best of {REPEAT}, same run"

    rng = random.Random(7)  # the same seed and order as bench_spot: the same frames
    cb_frames = coinbase_frames(rng)
    state = rng.getstate()
    v2_frames = kraken_frames(rng)
    rng.setstate(state)
    v1_sent, v1_merged = kraken_v1_frames(rng)
    json_us = _json_us(cb_frames[1:5001])

    rows = []
    # Coinbase Advanced Trade
    cb_snapshot = cb_frames[0].replace('"side":"offer"', '"side":"ask"')
    cf_rate, cf_book = _cryptofeed_rate(
        lambda: _cryptofeed(cf, "COINBASE", {"BTC-USD": "BTC-USD"}), cb_snapshot, cb_frames[1:]
    )
    ab_rate, ab_book = _arbkit(CoinbaseFeed(ENDPOINT, NullSink()), cb_frames)
    state_note = _same_book("coinbase", cf_book, ab_book)
    rows.append(
        _row(
            f"{label} Coinbase AT l2_data -> book",
            cf_rate,
            "reference",
            f"{common}; json.loads {json_us:.1f} µs/frame here; ends with arbkit's book "
            f"({state_note}); its snapshot asks needed 'offer' renamed 'ask' (2.4.1 drops them)",
        )
    )
    rows.append(
        _row(
            "arbkit CoinbaseFeed, same frames",
            ab_rate,
            "> cryptofeed",
            f"{ab_rate / cf_rate:.1f}x {label}; rows to NullSink; {common}",
        )
    )

    # Kraken v1 (cryptofeed's protocol) and v2 (arbkit's live protocol), one walk
    def kraken() -> Any:
        return _cryptofeed(cf, "KRAKEN", {"BTC-USD": V1_PAIR}, checksum_validation=True)

    split = sum(a != b for a, b in zip(v1_sent, v1_merged, strict=True))
    cf_sent, cf_sent_book = _cryptofeed_rate(kraken, v1_sent[0], v1_sent[1:])
    cf_merged, cf_merged_book = _cryptofeed_rate(kraken, v1_merged[0], v1_merged[1:])
    v1_feed = KrakenV1Feed(ENDPOINT, NullSink(), symbol=V1_PAIR, depth=DEPTH)
    v1_rate, v1_book = _arbkit(v1_feed, v1_sent)
    v2_rate, v2_book = _arbkit(KrakenFeed(ENDPOINT, NullSink(), depth=DEPTH), v2_frames)
    state_note = _same_book("kraken v1", cf_sent_book, v1_book)
    _same_book("kraken v1 merged", cf_merged_book, v1_book)
    _same_book("kraken v2 (same walk)", cf_sent_book, v2_book)
    last = int(v1_sent[-1].rsplit('"c":"', 1)[1].split('"', 1)[0])
    crcs = {cf_sent_book.book.checksum(), cf_merged_book.book.checksum()}
    if crcs | {v1_feed.checked[V1_PAIR].checksum()} != {last}:
        msg = f"kraken: final CRC32s {crcs} differ from the last frame's {last}"
        raise AssertionError(msg)
    validated = f"{len(v1_sent) - 1 - split} of {len(v1_sent) - 1} frames"
    rows += [
        _row(
            f"{label} Kraken v1 book-1000, checksum_validation on",
            cf_sent,
            "reference",
            f"frames as Kraken v1 sends them: it validates the CRC on {validated} (skips "
            f"frames split into a/b dicts); ends with arbkit's book ({state_note}); {common}",
        ),
        _row(
            f"{label} Kraken v1, CRC every frame (a/b merged in one dict)",
            cf_merged,
            "reference",
            f"equal work to arbkit (CRC32 verified on all {len(v1_sent) - 1} frames); "
            f"same end book; {common}",
        ),
        _row(
            "arbkit KrakenV1Feed, v1 frames as Kraken sends them",
            v1_rate,
            "> cryptofeed",
            f"CRC32 verified on every frame; {v1_rate / cf_merged:.1f}x {label} with CRC every "
            f"frame, {v1_rate / cf_sent:.1f}x it on the frames as sent; {common}",
        ),
        _row(
            "arbkit KrakenFeed v2, bench_spot's v2 frames (same walk)",
            v2_rate,
            "> cryptofeed",
            f"CRC32 verified on every frame; {v2_rate / cf_merged:.1f}x {label} (v1, CRC every "
            f"frame); same end book as the v1 runs; {common}",
        ),
    ]
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
