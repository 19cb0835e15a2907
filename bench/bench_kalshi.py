"""Kalshi WS client speed: ``orderbook_delta`` frames -> rows -> books, frames per second.

In process: frames follow the current wire era (Kalshi WS v2, dollars/fp, docs mirror mid/late
2026) with the real frames' key order. arbkit's `KalshiProtocol.on_message` checks ``seq``,
keeps prices and sizes as exact ints and writes each row to a sink (`NullSink` here: the parse
path alone). Baselines on the same deltas: stdlib ``json.loads`` and ``orjson.loads``, each into
a dict book keyed by price string with float sizes and no ``seq`` check; and an engine built
the way reference §8 describes kalshi-simple-ws-orderbook (frames through a queue, legacy
integer ``price``/``delta``, ``seq`` ignored, a level removed at <= 0), fed the same deltas in
the legacy era it reads.

End to end: the embedded world in another process (``python -m arbkit.sim.kalshi --delta-rate
inf``) streams deltas over loopback WebSocket to `KalshiFeed` on the shared runner, into a
`NullSink` and into a real `SessionWriter`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from arbkit.core.config import Credentials
from arbkit.core.fixed import format_fixed
from arbkit.core.sink import NullSink, Sink
from arbkit.core.storage import SessionWriter
from arbkit.venues.kalshi.auth import Signer
from arbkit.venues.kalshi.protocol import KalshiProtocol
from arbkit.venues.kalshi.vocab import Channel
from arbkit.venues.kalshi.ws import KalshiFeed
from bench.bench_sim_kalshi import start_world

MARKETS = [f"KXBTC15M-26NOV242315-{i:02d}" for i in range(8)]
FRAMES = 100_000


def make_frames(n: int = FRAMES, seed: int = 7) -> tuple[list[str], list[str], list[str]]:
    """Subscribed + snapshot frames, ``n`` delta frames (seq contiguous on sid 1), and the same
    deltas in the legacy era (integer cents; sizes as integer hundredths, same digit count)."""
    rng = random.Random(seed)
    books: dict[tuple[str, str], dict[int, int]] = {}
    grids = {"yes": range(3000, 4800, 100), "no": range(3500, 5300, 100)}  # never crossed
    head = ['{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}\n']
    seq = 0
    for m in MARKETS:
        seq += 1
        yes = {p: rng.randint(1, 500_000) for p in grids["yes"]}
        no = {p: rng.randint(1, 500_000) for p in grids["no"]}
        books[(m, "yes")], books[(m, "no")] = yes, no
        msg = {
            "market_ticker": m,
            "market_id": "fb95fe57-d4f2-4f3f-956c-f7011063d20f",
            "yes_dollars_fp": [
                [f"{p / 1e4:.4f}", f"{q / 100:.2f}"] for p, q in sorted(yes.items())
            ],
            "no_dollars_fp": [[f"{p / 1e4:.4f}", f"{q / 100:.2f}"] for p, q in sorted(no.items())],
        }
        frame = {"type": "orderbook_snapshot", "sid": 1, "seq": seq, "msg": msg}
        head.append(orjson.dumps(frame).decode() + "\n")
    # Market makers re-quote the same sizes: real captures repeat delta strings heavily
    # (94 distinct in 245 deltas, fixtures/real/kalshi/cockpit_*), so sizes come from a pool.
    sizes = [rng.choice((100, 200, 300, 500, 1000, 2500, 10000, 50000)) for _ in range(200)]
    sizes += [rng.randint(1, 200_000) for _ in range(1800)]
    deltas, legacy = [], []
    ts_ms = 1_795_000_000_000
    for _ in range(n):
        seq += 1
        ts_ms += rng.randint(0, 3)
        m = rng.choice(MARKETS)
        side = rng.choice(("yes", "no"))
        levels = books[(m, side)]
        price = rng.choice(grids[side])
        have = levels.get(price, 0)
        size, roll = rng.choice(sizes), rng.random()
        if have and roll < 0.05:
            delta = -have  # the level goes away
        elif size < have and roll < 0.5:
            delta = -size
        else:
            delta = size
        levels[price] = have + delta
        dmsg: dict[str, object] = {
            "market_ticker": m,
            "market_id": "fb95fe57-d4f2-4f3f-956c-f7011063d20f",
            "price_dollars": format_fixed(price, 4),
            "delta_fp": format_fixed(delta, 2),
            "side": side,
            "ts": "2026-11-24T23:15:00.12345Z",
            "ts_ms": ts_ms,
        }
        frame = {"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": dmsg}
        deltas.append(orjson.dumps(frame).decode() + "\n")
        old = {"market_ticker": m, "market_id": dmsg["market_id"], "price": price // 100}
        old |= {"delta": delta, "side": side, "ts": "2026-11-24T23:15:00Z"}
        frame = {"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": old}
        legacy.append(orjson.dumps(frame).decode() + "\n")
    return head, deltas, legacy


def _rate(frames: list[str], feed: Callable[[str, int], None]) -> float:
    """Frames per CPU second through ``feed(text, recv_ns)``, called as the runner calls it.

    CPU time of this thread, not wall time: the machine is shared, and waiting for another
    process's turn on the core is not time spent parsing (nor are idle library threads).
    """
    recv = time.time_ns()
    t0 = time.thread_time()
    for text in frames:
        feed(text, recv)
    return len(frames) / (time.thread_time() - t0)


def _best(runs: int, measure: Callable[[], float]) -> float:
    """Best of several runs: the machine is shared, so the fastest run is the least disturbed."""
    return max(measure() for _ in range(runs))


def _naive(loads: Callable[[str], object]) -> Callable[[str, int], None]:
    book: dict[tuple[str, str], dict[str, float]] = {}

    def feed(text: str, recv_ns: int) -> None:
        frame = loads(text)
        assert isinstance(frame, dict)
        msg = frame["msg"]
        if frame["type"] == "orderbook_delta":
            levels = book.setdefault((msg["market_ticker"], msg["side"]), {})
            qty = levels.get(msg["price_dollars"], 0.0) + float(msg["delta_fp"])
            if qty <= 0:
                levels.pop(msg["price_dollars"], None)
            else:
                levels[msg["price_dollars"]] = qty

    return feed


class _SimpleEngineBook:
    """One market's book as reference §8 describes kalshi-simple-ws-orderbook's engine."""

    def __init__(self) -> None:
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}

    def apply_delta(self, msg: dict[str, Any]) -> None:
        levels = self.yes if msg["side"] == "yes" else self.no
        qty = levels.get(msg["price"], 0) + msg["delta"]
        if qty <= 0:
            levels.pop(msg["price"], None)
        else:
            levels[msg["price"]] = qty


def _simple_engine() -> Callable[[str, int], None]:
    """Frames queued by the receiver and taken by the engine: ``json.loads``, legacy ints,
    ``seq`` ignored (its behaviour per reference §8; its code is neither installed nor copied)."""
    queue: deque[str] = deque()
    books: dict[str, _SimpleEngineBook] = {}

    def feed(text: str, recv_ns: int) -> None:
        queue.append(text)
        data = json.loads(queue.popleft())
        if data["type"] == "orderbook_delta":
            msg = data["msg"]
            book = books.get(msg["market_ticker"])
            if book is None:
                book = books[msg["market_ticker"]] = _SimpleEngineBook()
            book.apply_delta(msg)

    return feed


def run() -> list[dict[str, object]]:
    rows = in_process()
    rows += end_to_end()
    return rows


def in_process() -> list[dict[str, object]]:
    """The in-process hot path against the naive baselines, all in this run."""
    head, deltas, legacy = make_frames()
    last_seq = len(head) - 1 + len(deltas)

    def arbkit_rate() -> float:
        proto = KalshiProtocol(NullSink())
        for text in head:
            proto.on_message(text, 0)
        rate = _rate(deltas, proto.on_message)
        books_ok = all(b.valid for b in proto.books.values())
        if not books_ok or proto.subs["orderbook_delta"].last_seq != last_seq:
            msg = "benchmark books did not stay valid: the hot path is broken"
            raise RuntimeError(msg)
        return rate

    arbkit = _best(3, arbkit_rate)
    naive_orjson = _best(3, lambda: _rate(deltas, _naive(orjson.loads)))
    naive_json = _best(3, lambda: _rate(deltas, _naive(json.loads)))
    simple = _best(3, lambda: _rate(legacy, _simple_engine()))
    note = f"{len(deltas)} current-era deltas, {len(MARKETS)} markets, one core (CPU time)"
    return [
        {
            "name": "kalshi delta text -> row -> book (arbkit, seq checked, exact ints)",
            "value": round(arbkit),
            "unit": "frames/s",
            "target": ">= 400k/s",
            "note": f"{note}; {arbkit / naive_json:.2f}x the json.loads baseline, "
            f"{arbkit / naive_orjson:.2f}x the orjson one, {arbkit / simple:.2f}x the "
            "kalshi-simple-ws-orderbook-like engine (same run)",
        },
        {
            "name": "kalshi delta baseline: orjson.loads + dict book (floats, no seq)",
            "value": round(naive_orjson),
            "unit": "frames/s",
            "target": "-",
            "note": "naive baseline for comparison",
        },
        {
            "name": "kalshi delta baseline: json.loads + dict book (floats, no seq)",
            "value": round(naive_json),
            "unit": "frames/s",
            "target": "-",
            "note": "naive baseline for comparison",
        },
        {
            "name": "kalshi delta baseline: kalshi-simple-ws-orderbook-like engine (legacy ints)",
            "value": round(simple),
            "unit": "frames/s",
            "target": "-",
            "note": "queue + json.loads + per-market dict books, no seq (reference §8 behaviour)",
        },
    ]


E2E_MARKETS = 10
E2E_SECONDS = 5.0


async def _loopback(info: dict[str, Any], sink: Sink, seconds: float) -> dict[str, float]:
    """`KalshiFeed` on the real runner against the world: delta frames into books per second.

    Frames are counted by the book subscription's ``seq`` (every frame on the sid takes one),
    over wall time once every book holds its snapshot; the books must still be valid after.
    """
    creds = Credentials(key_id=info["key_id"], private_key_path=Path(info["private_key_path"]))
    async with aiohttp.ClientSession() as http:
        url = info["rest_url"] + "/markets?status=open&series_ticker=KXBTCD"
        async with http.get(url) as r:
            tickers = [m["ticker"] for m in (await r.json())["markets"]][:E2E_MARKETS]
        feed = KalshiFeed(
            sink,
            info["ws_url"],
            signer=Signer.from_credentials(creds),
            markets=tickers,
            channels=(Channel.BOOK,),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop=stop, http=http))
        try:
            for _ in range(200):
                await asyncio.sleep(0.05)
                if len(feed.books) == len(tickers) and all(b.valid for b in feed.books.values()):
                    break
            else:
                raise RuntimeError("the world's books never arrived")
            sub = feed.subs[Channel.BOOK]
            seq0, wall0, cpu0 = sub.last_seq, time.perf_counter(), time.process_time()
            await asyncio.sleep(seconds)
            seq1, wall1, cpu1 = sub.last_seq, time.perf_counter(), time.process_time()
            if not all(b.valid for b in feed.books.values()) or sub is not feed.subs.get(
                Channel.BOOK
            ):
                raise RuntimeError("books went invalid or resubscribed during the benchmark")
        finally:
            stop.set()
            await task
    frames = seq1 - seq0
    return {"rate": frames / (wall1 - wall0), "cpu_rate": frames / (cpu1 - cpu0)}


def end_to_end(seconds: float = E2E_SECONDS) -> list[dict[str, object]]:
    """World in another process -> loopback WebSocket -> runner -> `KalshiFeed` -> books."""
    proc, info = start_world()
    try:
        null = asyncio.run(_loopback(info, NullSink(), seconds))
        with tempfile.TemporaryDirectory(prefix="arbkit-bench-") as tmp:
            writer = SessionWriter.create(Path(tmp))
            try:
                recorded = asyncio.run(_loopback(info, writer, seconds))
            finally:
                writer.close(compact=False)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    load = os.getloadavg()[0]
    note = (
        f"world (python -m arbkit.sim.kalshi --delta-rate inf) in another process, "
        f"{E2E_MARKETS} markets, {seconds:g} s wall, load average {load:.1f} on "
        f"{os.cpu_count()} cores"
    )
    return [
        {
            "name": "kalshi e2e loopback WS -> runner -> KalshiFeed -> books (NullSink)",
            "value": round(null["rate"]),
            "unit": "frames/s",
            "target": ">= 100k/s",
            "note": f"{note}; the client used one CPU second per {null['cpu_rate']:,.0f} frames",
        },
        {
            "name": "kalshi e2e loopback WS -> runner -> KalshiFeed -> books (SessionWriter)",
            "value": round(recorded["rate"]),
            "unit": "frames/s",
            "target": "-",
            "note": f"{note}; raw frames and rows recorded to a real session; the client used "
            f"one CPU second per {recorded['cpu_rate']:,.0f} frames",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<72} {row['value']:>10,} {row['unit']}  target {row['target']}")
