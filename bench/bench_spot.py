"""Spot feed throughput: JSON text -> rows -> L2 book, for Coinbase and Kraken (checksum on).

Frames are realistic: a 1000-level book (500 a side) around $65,000, updates touching one to
four levels, mostly near the top, a third of them deletes (each replaced by a new level so the
book keeps its size). The Kraken frames carry correct CRC32s, verified on every frame; the feed
must still vouch for its book at the end. Rows go to a `NullSink` so the parse path alone is
measured. The issue quotes cryptofeed 2.4.1 at about 80k/s (Coinbase) and 49k/s (Kraken) "on
this kind of machine"; `bench_cryptofeed` runs cryptofeed itself on these frames here.

The same run also measures a naive implementation over the same frames (``json.loads``,
Decimal dicts, ``sorted()`` top 10, and for Kraken the CRC32 verified every frame): the
machine is shared, so the ratio to that baseline is the figure to compare between runs.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from decimal import Decimal
from typing import Any

import orjson

from arbkit.core.book import L2Book
from arbkit.core.config import Endpoint
from arbkit.core.fixed import format_fixed
from arbkit.core.sink import NullSink
from arbkit.venues.coinbase import CoinbaseFeed
from arbkit.venues.kraken import KrakenFeed, checksum
from arbkit.venues.spot import SpotFeed

FRAMES = 40_000
LEVELS = 500
ENDPOINT = Endpoint("ws://127.0.0.1:1", "http://127.0.0.1:1")


def _walk(rng: random.Random, tick: int) -> list[list[tuple[str, int, int]]]:
    """Update batches over a 1000-level book: (side, price_e8, size_e8), size 0 deletes."""
    mid = 65_000 * 10**8
    bids = {mid - tick * (i + 1) for i in range(LEVELS)}
    asks = {mid + tick * (i + 1) for i in range(LEVELS)}
    out = []
    for _ in range(FRAMES):
        batch = []
        for _ in range(rng.randint(1, 4)):
            side, prices = ("bid", bids) if rng.random() < 0.5 else ("ask", asks)
            sign = -1 if side == "bid" else 1
            depth = int(rng.expovariate(1 / 40)) % LEVELS
            price = mid + sign * tick * (depth + 1)
            size = rng.randint(1, 500_000_000)
            if price in prices and rng.random() < 1 / 3:
                prices.discard(price)
                batch.append((side, price, 0))
                price = mid + sign * tick * (LEVELS + rng.randint(1, 50))
            prices.add(price)
            batch.append((side, price, size))
        out.append(batch)
    return out


def _seed(tick: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    mid = 65_000 * 10**8
    bids = [(mid - tick * (i + 1), 100_000_000) for i in range(LEVELS)]
    asks = [(mid + tick * (i + 1), 100_000_000) for i in range(LEVELS)]
    return bids, asks


def _num(value: int, digits: int) -> str:
    return format_fixed(value // 10 ** (8 - digits), digits)


def coinbase_frames(rng: random.Random) -> list[str]:
    """An Advanced Trade snapshot then ``l2_data`` updates, as the venue prints them."""
    bids, asks = _seed(10**6)

    def level(side: str, p: int, s: int) -> dict[str, str]:
        return {
            "side": "bid" if side == "bid" else "offer",
            "event_time": "2026-08-09T21:05:48.170326Z",
            "price_level": format_fixed(p, 8, trim=True),
            "new_quantity": format_fixed(s, 8, trim=True),
        }

    def frame(seq: int, kind: str, levels: list[dict[str, str]]) -> str:
        msg = {
            "channel": "l2_data",
            "timestamp": f"2026-08-09T21:05:{48 + seq // 100000:02d}.{seq:09d}Z",
            "sequence_num": seq,
            "events": [{"type": kind, "product_id": "BTC-USD", "updates": levels}],
        }
        return orjson.dumps(msg).decode()

    snap = [level("bid", p, s) for p, s in bids] + [level("ask", p, s) for p, s in asks]
    frames = [frame(0, "snapshot", snap)]
    for seq, batch in enumerate(_walk(rng, 10**6), start=1):
        frames.append(frame(seq, "update", [level(*c) for c in batch]))
    return frames


def kraken_frames(rng: random.Random) -> list[str]:
    """A v2 snapshot then updates with correct checksums (price 1 dp, qty 8 dp, as Kraken)."""
    bids, asks = _seed(10**7)
    model = L2Book()
    frags: dict[str, dict[int, str]] = {"bid": {}, "ask": {}}

    def text(side: str, p: int, s: int) -> str:
        pt, qt = _num(p, 1), _num(s, 8)
        model.set(side, p, s)
        if s:
            frags[side][p] = pt.replace(".", "").lstrip("0") + qt.replace(".", "").lstrip("0")
        else:
            frags[side].pop(p, None)
        return f'{{"price":{pt},"qty":{qt}}}'

    def frame(kind: str, b: list[str], a: list[str]) -> str:
        for side in (model.bids, model.asks):
            for p in side.truncate(1000):
                frags["bid" if side is model.bids else "ask"].pop(p)
        crc = checksum(
            [frags["ask"][p] for p in model.asks.prices(10)],
            [frags["bid"][p] for p in model.bids.prices(10)],
        )
        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD","bids":['
            f'{",".join(b)}],"asks":[{",".join(a)}],"checksum":{crc},'
            f'"timestamp":"2026-08-09T21:05:48.170326Z"}}]}}'
        )

    frames = [
        frame(
            "snapshot",
            [text("bid", p, s) for p, s in bids],
            [text("ask", p, s) for p, s in asks],
        )
    ]
    for batch in _walk(rng, 10**7):
        b = [text(side, p, s) for side, p, s in batch if side == "bid"]
        a = [text(side, p, s) for side, p, s in batch if side == "ask"]
        frames.append(frame("update", b, a))
    return frames


def _throughput(feed: SpotFeed, frames: list[str], repeat: int = 1) -> float:
    """Frames/s (CPU time) of ``feed`` over ``frames`` (a snapshot first), best of ``repeat``
    passes from a fresh connection (the machine is shared: the best pass is the least
    disturbed one)."""
    best = 0.0
    for _ in range(repeat):
        feed.on_open(1, 0)
        feed.on_message(frames[0], 1)
        on_message = feed.on_message
        started = time.process_time()
        for i, text in enumerate(frames[1:], start=2):
            on_message(text, i)
        elapsed = time.process_time() - started
        book = next(iter(feed.books.values()))
        if not book.valid:
            msg = f"{feed.venue} book lost validity during the benchmark"
            raise AssertionError(msg)
        best = max(best, (len(frames) - 1) / elapsed)
    return best


def _orjson_rate(frames: list[str]) -> float:
    """orjson.loads alone over the same frames: this machine's ceiling for any JSON feed."""
    loads = orjson.loads
    started = time.process_time()
    for text in frames:
        loads(text)
    return len(frames) / (time.process_time() - started)


# --- the same-machine baseline: what a straightforward implementation does ------------------


def _naive_top(book: dict[Decimal, Decimal], reverse: bool) -> list[Decimal]:
    return sorted(book, reverse=reverse)[:10]


def naive_coinbase(frames: list[str]) -> float:
    """Frames/s of a naive Coinbase book: ``json.loads``, a Decimal dict per side, and the top
    10 of each side by ``sorted()`` after every frame (what an index would read)."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    started = time.process_time()
    for text in frames:
        for ev in json.loads(text)["events"]:
            for u in ev["updates"]:
                book = bids if u["side"] == "bid" else asks
                price, qty = Decimal(u["price_level"]), Decimal(u["new_quantity"])
                if qty:
                    book[price] = qty
                else:
                    book.pop(price, None)
        _naive_top(bids, True)
        _naive_top(asks, False)
    return len(frames) / (time.process_time() - started)


def naive_kraken(frames: list[str], depth: int = 1000) -> float:
    """Frames/s of a naive Kraken v2 book: ``json.loads`` with Decimal numbers (exact digits),
    a Decimal dict per side truncated to ``depth`` by ``sorted()``, and the CRC32 over the
    ``sorted()`` top 10 verified on every frame."""
    books: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}
    digits: dict[str, dict[Decimal, str]] = {"bids": {}, "asks": {}}
    started = time.process_time()
    for text in frames:
        (d,) = json.loads(text, parse_float=Decimal)["data"]
        for name in ("bids", "asks"):
            book, texts = books[name], digits[name]
            for lv in d[name]:
                price, qty = lv["price"], lv["qty"]
                if qty:
                    book[price] = qty
                    texts[price] = str(price).replace(".", "").lstrip("0") + str(qty).replace(
                        ".", ""
                    ).lstrip("0")
                elif price in book:
                    del book[price], texts[price]
            if len(book) > depth:
                for price in sorted(book, reverse=name == "bids")[depth:]:
                    del book[price], texts[price]
        top = [digits["asks"][p] for p in _naive_top(books["asks"], False)]
        top += [digits["bids"][p] for p in _naive_top(books["bids"], True)]
        if zlib.crc32("".join(top).encode()) != d["checksum"]:
            msg = "the naive Kraken baseline lost its checksum"
            raise AssertionError(msg)
    return len(frames) / (time.process_time() - started)


BASELINE_FRAMES = 5_000


def run() -> list[dict[str, Any]]:
    rng = random.Random(7)
    rows = []
    for venue, name, feed, frames, naive in (
        (
            "coinbase",
            "coinbase AT l2_data text -> book",
            CoinbaseFeed(ENDPOINT, NullSink()),
            coinbase_frames(rng),
            naive_coinbase,
        ),
        (
            "kraken",
            "kraken v2 book text -> book, CRC32 every frame",
            KrakenFeed(ENDPOINT, NullSink(), depth=1000),
            kraken_frames(rng),
            naive_kraken,
        ),
    ):
        base = naive(frames[: BASELINE_FRAMES + 1])  # the snapshot frame applies like any other
        rate = _throughput(feed, frames, repeat=3)
        ceiling = _orjson_rate(frames[1:])
        rows.append(
            {
                "name": name,
                "value": rate,
                "unit": "frames/s",
                "target": ">= 100k/s",
                "note": (
                    "1000-level book (500 a side), 1-4 levels/update, rows to NullSink, CPU time, "
                    f"best of 3; {rate / base:.1f}x the naive baseline in this run; orjson.loads "
                    f"alone {ceiling / 1000:.0f}k/s here; cryptofeed 2.4.1 on the same frames: "
                    "bench cryptofeed"
                ),
            }
        )
        rows.append(
            {
                "name": f"baseline: naive {venue} (json.loads, Decimal dicts, sorted() top 10)",
                "value": base,
                "unit": "frames/s",
                "target": "reference",
                "note": (
                    f"same machine, same run, first {BASELINE_FRAMES} frames: divide to compare "
                    "figures taken on a busy machine"
                ),
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
