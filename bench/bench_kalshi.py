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

from arbkit.core.fixed import format_fixed
from arbkit.core.sink import NullSink
from arbkit.venues.kalshi.protocol import KalshiProtocol

MARKETS = [f"KXBTC15M-26NOV242315-{i:02d}" for i in range(8)]
FRAMES = 100_000


def make_frames(n: int = FRAMES, seed: int = 7) -> tuple[list[str], list[str]]:
    """Subscribed + snapshot frames, then ``n`` delta frames (seq contiguous on sid 1)."""
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
    deltas = []
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
    return head, deltas


def _rate(frames: list[str], feed: Callable[[str, int], None]) -> float:
    """Frames per CPU second through ``feed(text, recv_ns)``, called as the runner calls it.

    CPU time of this process (one thread), not wall time: the machine is shared, and waiting
    for another process's turn on the core is not time spent parsing.
    """
    recv = time.time_ns()
    t0 = time.process_time()
    for text in frames:
        feed(text, recv)
    return len(frames) / (time.process_time() - t0)


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


def run() -> list[dict[str, object]]:
    head, deltas = make_frames()
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
    note = f"{len(deltas)} current-era deltas, {len(MARKETS)} markets, one core (CPU time)"
    return [
        {
            "name": "kalshi delta text -> row -> book (arbkit, seq checked, exact ints)",
            "value": round(arbkit),
            "unit": "frames/s",
            "target": ">= 400k/s",
            "note": f"{note}; {arbkit / naive_json:.2f}x the json.loads baseline, "
            f"{arbkit / naive_orjson:.2f}x the orjson one (same run)",
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
