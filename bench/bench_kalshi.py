"""Kalshi WS hot path: ``orderbook_delta`` frame text -> row -> book, frames per second.

Frames follow the current wire era (Kalshi WS v2, dollars/fp, docs mirror mid/late 2026) with
the real frames' key order. arbkit's `KalshiProtocol.on_message` checks ``seq``, keeps prices
and sizes as exact ints and writes each row to a sink (`NullSink` here: the parse path alone).
Two naive baselines run on the same frames: stdlib ``json.loads`` and ``orjson.loads``, each
into a dict book keyed by price string with float sizes and no ``seq`` check.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable

import orjson

from arbkit.core.sink import NullSink
from arbkit.venues.kalshi.protocol import KalshiProtocol

MARKETS = [f"KXBTC15M-26NOV242315-{i:02d}" for i in range(8)]
FRAMES = 200_000


def make_frames(n: int = FRAMES, seed: int = 7) -> tuple[list[str], list[str]]:
    """Subscribed + snapshot frames, then ``n`` delta frames (seq contiguous on sid 1)."""
    rng = random.Random(seed)
    books: dict[tuple[str, str], dict[int, int]] = {}
    head = ['{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}\n']
    seq = 0
    for m in MARKETS:
        seq += 1
        yes = {p: rng.randint(1, 500_000) for p in range(3000, 4800, 100)}
        no = {p: rng.randint(1, 500_000) for p in range(3500, 5300, 100)}
        books[(m, "yes")], books[(m, "no")] = yes, no
        msg = {
            "market_ticker": m,
            "market_id": "fb95fe57-d4f2-4f3f-956c-f7011063d20f",
            "yes_dollars_fp": [[f"{p / 1e4:.4f}", f"{q / 100:.2f}"] for p, q in sorted(yes.items())],
            "no_dollars_fp": [[f"{p / 1e4:.4f}", f"{q / 100:.2f}"] for p, q in sorted(no.items())],
        }
        frame = {"type": "orderbook_snapshot", "sid": 1, "seq": seq, "msg": msg}
        head.append(orjson.dumps(frame).decode() + "\n")
    deltas = []
    ts_ms = 1_795_000_000_000
    for _ in range(n):
        seq += 1
        ts_ms += rng.randint(0, 3)
        m = rng.choice(MARKETS)
        side = rng.choice(("yes", "no"))
        levels = books[(m, side)]
        price = rng.choice(list(levels))
        have = levels[price]
        delta = rng.randint(1, 20_000) if rng.random() < 0.55 or have < 2 else -rng.randint(1, have)
        if have + delta == 0:
            delta += 1  # keep the ladder populated
        levels[price] = have + delta
        deltas.append(
            '{"type":"orderbook_delta","sid":1,"seq":%d,"msg":{"market_ticker":"%s",'
            '"market_id":"fb95fe57-d4f2-4f3f-956c-f7011063d20f","price_dollars":"%.4f",'
            '"delta_fp":"%s","side":"%s","ts":"2026-11-24T23:15:00.12345Z","ts_ms":%d}}\n'
            % (seq, m, price / 1e4, f"{delta / 100:.2f}", side, ts_ms)
        )
    return head, deltas


def _rate(frames: list[str], feed: Callable[[str], None]) -> float:
    t0 = time.perf_counter()
    for text in frames:
        feed(text)
    return len(frames) / (time.perf_counter() - t0)


def _naive(loads: Callable[[str], object]) -> Callable[[str], None]:
    book: dict[tuple[str, str], dict[str, float]] = {}

    def feed(text: str) -> None:
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


def run() -> list[dict[str, object]]:
    head, deltas = make_frames()
    proto = KalshiProtocol(NullSink())
    for text in head:
        proto.on_message(text, 0)
    recv = time.time_ns()
    arbkit = _rate(deltas, lambda text: proto.on_message(text, recv))
    if not all(b.valid for b in proto.books.values()) or proto.subs["orderbook_delta"].last_seq != (
        len(head) - 1 + len(deltas)
    ):
        msg = "benchmark book did not stay valid: the hot path is broken"
        raise RuntimeError(msg)
    naive_orjson = _rate(deltas, _naive(orjson.loads))
    naive_json = _rate(deltas, _naive(json.loads))
    note = f"{len(deltas)} current-era deltas over {len(MARKETS)} markets, one core, in-process"
    return [
        {
            "name": "kalshi delta text -> row -> book (arbkit, seq checked, exact ints)",
            "value": round(arbkit),
            "unit": "frames/s",
            "target": ">= 400k/s",
            "note": note,
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
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<72} {row['value']:>10,} {row['unit']}  target {row['target']}")
