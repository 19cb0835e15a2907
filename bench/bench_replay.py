"""Replay and old recordings: Kalshi delta frames of every wire era, and raw replay.

- **Eras**: the same book walk written in each Kalshi wire era (reference/kalshi-api.md §3):
  legacy (integer cents ``price``, whole-contract ``delta``, RFC 3339 ``ts``; 2023–2025),
  transitional (those plus ``price_dollars``/``delta_fp``, no ``ts_ms``; 2026-02/03) and current
  (``price_dollars``/``delta_fp``/``ts_ms`` only). Each goes through `KalshiProtocol` (seq
  checked, exact ints, books kept) and through a naive ``json.loads`` + dict book reading the
  same frames, in this run; and through the protocol's general path (``orjson`` dict +
  ``msgspec.convert``), which is how non-current deltas were read before the typed any-era
  decode (the "before" figure, same run).
- **Raw replay**: a session of raw Kalshi frames written to Parquet, replayed by
  `arbkit.replay.player.Player` (Parquet batches -> heap merge -> runner's `deliver` -> rows),
  against feeding the same frames to the protocol directly.

Throughputs are CPU time of this thread, best of three (the machine is shared).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from arbkit.core.events import RawFrame
from arbkit.core.fixed import format_fixed
from arbkit.core.sink import NullSink
from arbkit.core.storage import SessionWriter
from arbkit.replay.player import Player
from arbkit.venues.kalshi import protocol as kalshi_protocol
from arbkit.venues.kalshi.protocol import KalshiProtocol
from arbkit.venues.parsers import identity_of
from bench.bench_kalshi import _best, _rate

MARKETS = [f"KXBTC15M-26NOV242315-{i:02d}" for i in range(8)]
FRAMES = 100_000
ERAS = ("current", "transitional", "legacy")
MARKET_ID = "fb95fe57-d4f2-4f3f-956c-f7011063d20f"


def era_frames(era: str, n: int = FRAMES, seed: int = 7) -> list[str]:
    """Subscribed, one snapshot per market, then ``n`` deltas (seq contiguous on sid 1), all in
    ``era``; the same walk in every era (whole contracts, whole cents: legacy can carry them)."""
    rng = random.Random(seed)
    grids = {"yes": range(30, 48), "no": range(35, 53)}  # cents; never crossed
    frames = ['{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}\n']
    books: dict[tuple[str, str], dict[int, int]] = {}
    seq = 0
    for m in MARKETS:
        seq += 1
        msg: dict[str, Any] = {"market_ticker": m, "market_id": MARKET_ID}
        for side, grid in grids.items():
            levels = books[(m, side)] = {c: rng.randint(1, 5000) for c in grid}
            ladder = sorted(levels.items())
            if era != "current":
                msg[side] = [[c, q] for c, q in ladder]
            if era != "legacy":
                msg[f"{side}_dollars_fp"] = [[f"{c / 100:.4f}", f"{q}.00"] for c, q in ladder]
        frames.append(_text({"type": "orderbook_snapshot", "sid": 1, "seq": seq, "msg": msg}))
    sizes = [rng.choice((1, 2, 5, 10, 25, 100, 500)) for _ in range(200)]
    sizes += [rng.randint(1, 2000) for _ in range(1800)]
    ts_ms = 1_795_000_000_000
    for _ in range(n):
        seq += 1
        ts_ms += rng.randint(0, 3)
        m, side = rng.choice(MARKETS), rng.choice(("yes", "no"))
        levels = books[(m, side)]
        cents = rng.choice(grids[side])
        have, size, roll = levels.get(cents, 0), rng.choice(sizes), rng.random()
        delta = -have if have and roll < 0.05 else -size if size < have and roll < 0.5 else size
        levels[cents] = have + delta
        d: dict[str, Any] = {"market_ticker": m, "market_id": MARKET_ID}
        if era != "legacy":
            d |= {"price_dollars": format_fixed(cents * 100, 4), "delta_fp": f"{delta}.00"}
        if era != "current":
            d |= {"price": cents, "delta": delta}
        d["side"] = side
        d["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms // 1000))
        if era == "current":
            d["ts_ms"] = ts_ms
        frames.append(_text({"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": d}))
    return frames


def _text(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode() + "\n"


def _naive() -> Callable[[str, int], None]:
    """``json.loads`` + a dict book, reading whichever price/size fields the era has."""
    import json

    book: dict[tuple[str, str], dict[Any, float]] = {}

    def feed(text: str, recv_ns: int) -> None:
        frame = json.loads(text)
        msg = frame["msg"]
        if frame["type"] == "orderbook_delta":
            levels = book.setdefault((msg["market_ticker"], msg["side"]), {})
            price = msg.get("price_dollars") or msg["price"]
            qty = levels.get(price, 0.0) + float(msg.get("delta_fp") or msg["delta"])
            if qty <= 0:
                levels.pop(price, None)
            else:
                levels[price] = qty

    return feed


def _arbkit(frames: list[str], head: int, *, general: bool = False) -> float:
    """Deltas/s through `KalshiProtocol` after its head frames; ``general`` forces the general
    path for non-current deltas (the code before the typed any-era decode)."""
    proto = KalshiProtocol(NullSink())
    for text in frames[:head]:
        proto.on_message(text, 0)
    typed = kalshi_protocol.any_era_delta
    if general:
        kalshi_protocol.any_era_delta = lambda text: None  # type: ignore[assignment]
    try:
        rate = _rate(frames[head:], proto.on_message)
    finally:
        kalshi_protocol.any_era_delta = typed
    if not all(b.valid for b in proto.books.values()) or len(proto.books) != len(MARKETS):
        msg = "benchmark books did not stay valid: a parse path is broken"
        raise RuntimeError(msg)
    return rate


def eras() -> list[dict[str, object]]:
    head = 1 + len(MARKETS)
    rows: list[dict[str, object]] = []
    for era in ERAS:
        frames = era_frames(era)
        naive = _best(3, lambda f=frames: _rate(f[head:], _naive()))  # type: ignore[misc]
        arbkit = _best(3, lambda f=frames: _arbkit(f, head))  # type: ignore[misc]
        note = f"{naive:.0f}/s naive json.loads + dict book on the same frames"
        if era != "current":
            before = _best(3, lambda f=frames: _arbkit(f, head, general=True))  # type: ignore[misc]
            note += f"; before (general path) {before:.0f}/s = {before / naive:.2f}x"
        rows.append(
            {
                "name": f"kalshi {era}-era delta text -> row -> book",
                "value": round(arbkit),
                "unit": "frames/s",
                "target": ">= 1.5x naive",
                "note": f"{arbkit / naive:.2f}x naive; {note}",
            }
        )
    return rows


STREAMS = ("kalshi_ws", "kalshi_ws_b")


def _session(streams: dict[str, list[str]], out: Path) -> Path:
    """A session holding each stream's frames raw (interleaved in time), parsers declared."""
    with SessionWriter.create(out, "bench") as writer:
        t0 = 1_795_000_000_000_000_000
        for k, (stream, frames) in enumerate(streams.items()):
            proto = KalshiProtocol(NullSink(), stream=stream)
            writer.declare_stream(stream, identity_of(proto))
            writer.write_raw(stream, RawFrame(t0 + k, 1, 0, "connect", "replay"))
            for i, text in enumerate(frames, start=1):
                writer.write_raw(stream, RawFrame(t0 + i * 1000 + k, 1, i, "frame", text))
    return writer.path


def replay() -> list[dict[str, object]]:
    streams = {s: era_frames("current", FRAMES // 2, seed=k) for k, s in enumerate(STREAMS)}
    total = sum(len(f) + 1 for f in streams.values())
    with tempfile.TemporaryDirectory(prefix="arbkit-bench-replay-") as tmp:
        path = _session(streams, Path(tmp))

        def player_rate() -> float:
            t0 = time.thread_time()
            rows = sum(1 for _ in Player(path))
            elapsed = time.thread_time() - t0
            if rows < total - len(streams):
                raise RuntimeError("replay wrote fewer rows than frames")
            return total / elapsed

        replayed = _best(3, player_rate)
    direct = _best(3, lambda: _arbkit(streams[STREAMS[0]], 1 + len(MARKETS)))
    return [
        {
            "name": "raw replay: Parquet -> heap merge -> parser -> rows (2 Kalshi streams)",
            "value": round(replayed),
            "unit": "frames/s",
            "target": "-",
            "note": f"{total} frames; {replayed / direct:.2f}x feeding the parser directly "
            f"({direct:.0f}/s, rows dropped), same run",
        }
    ]


def run() -> list[dict[str, object]]:
    return eras() + replay()


if __name__ == "__main__":
    for row in run():
        print(row)
