"""Spot feed throughput for Gemini v1, Crypto.com v1 and Bullish: JSON text -> rows -> book.

Same book and update walk as `bench.bench_spot` (1000 levels, 1-4 levels per update, a third
deletes), printed the way each venue prints it, with its sequence check on every frame
(``socket_sequence``, ``pu``/``u``, ``sequenceNumberRange``). Rows go to a `NullSink`.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from arbkit.core.config import Endpoint
from arbkit.core.fixed import format_fixed
from arbkit.core.sink import NullSink
from arbkit.venues.bullish import BullishFeed
from arbkit.venues.cryptocom import CryptocomFeed
from arbkit.venues.gemini import GeminiFeed
from bench.bench_spot import _seed, _throughput, _walk

ENDPOINT = Endpoint("ws://127.0.0.1:1", "http://127.0.0.1:1")
TICK = 10**6


def _dec(value: int) -> str:
    return format_fixed(value, 8, trim=True)


def gemini_frames(rng: random.Random) -> list[str]:
    bids, asks = _seed(TICK)
    initial = [
        {"type": "change", "reason": "initial", "price": _dec(p), "delta": _dec(s),
         "remaining": _dec(s), "side": side}
        for side, levels in (("bid", bids), ("ask", asks))
        for p, s in levels
    ]  # fmt: skip
    frames = [
        orjson.dumps({"type": "update", "eventId": 1, "socket_sequence": 0, "events": initial})
    ]
    for seq, batch in enumerate(_walk(rng, TICK), start=1):
        events = [
            {"type": "change", "side": side, "price": _dec(p), "remaining": _dec(s),
             "delta": _dec(s), "reason": "place" if s else "cancel"}
            for side, p, s in batch
        ]  # fmt: skip
        ms = 1_786_313_193_000 + seq
        frame = {"type": "update", "eventId": 1 + seq, "timestamp": ms // 1000}
        frame.update(timestampms=ms, socket_sequence=seq, events=events)
        frames.append(orjson.dumps(frame))
    return [f.decode() for f in frames]


def _cdc(data: dict[str, Any], channel: str) -> str:
    result: dict[str, Any] = {"instrument_name": "BTC_USD", "subscription": "book.BTC_USD.50"}
    result.update(channel=channel, depth=50, data=[data])
    return orjson.dumps({"id": -1, "method": "subscribe", "code": 0, "result": result}).decode()


def cryptocom_frames(rng: random.Random) -> list[str]:
    bids, asks = _seed(TICK)
    u = 7_845_460_000
    snap = {
        "asks": [[_dec(p), _dec(s), "1"] for p, s in asks],
        "bids": [[_dec(p), _dec(s), "1"] for p, s in bids],
        "t": 1_786_313_193_000,
        "tt": 1_786_313_193_000,
        "u": u,
    }
    frames = [_cdc(snap, "book")]
    for i, batch in enumerate(_walk(rng, TICK)):
        update = {
            "asks": [[_dec(p), _dec(s), "1"] for side, p, s in batch if side == "ask"],
            "bids": [[_dec(p), _dec(s), "1"] for side, p, s in batch if side == "bid"],
        }
        data = {"update": update, "t": 1_786_313_193_000 + i, "tt": 1_786_313_193_000 + i}
        data.update(u=u + 1 + i, pu=u + i)
        frames.append(_cdc(data, "book.update"))
    return frames


def bullish_frames(rng: random.Random) -> list[str]:
    bids, asks = _seed(TICK)

    def frame(kind: str, seq: int, b: list[str], a: list[str]) -> str:
        data: dict[str, Any] = {"symbol": "BTCUSDC", "bids": b, "asks": a}
        data.update(timestamp="1777035859490")
        data.update(datetime="2026-04-24T13:04:19.490Z", publishedAtTimestamp="1777035860092")
        data.update(sequenceNumberRange=[seq, seq])
        return orjson.dumps({"type": kind, "dataType": "V1TALevel2", "data": data}).decode()

    def flat(levels: list[tuple[int, int]]) -> list[str]:
        return [x for p, s in levels for x in (_dec(p), _dec(s))]

    frames = [frame("snapshot", 100, flat(bids), flat(asks))]
    for seq, batch in enumerate(_walk(rng, TICK), start=101):
        b = flat([(p, s) for side, p, s in batch if side == "bid"])
        a = flat([(p, s) for side, p, s in batch if side == "ask"])
        frames.append(frame("update", seq, b, a))
    return frames


def run() -> list[dict[str, Any]]:
    rng = random.Random(11)
    results = (
        ("gemini v1 update", GeminiFeed(ENDPOINT, NullSink()), gemini_frames(rng)),
        ("cryptocom v1 book.update", CryptocomFeed(ENDPOINT, NullSink()), cryptocom_frames(rng)),
        ("bullish l2Orderbook update", BullishFeed(ENDPOINT, NullSink()), bullish_frames(rng)),
    )
    return [
        {
            "name": f"{name} text -> book, sequence checked",
            "value": round(_throughput(feed, frames)),
            "unit": "frames/s",
            "target": ">= 100k/s",
            "note": "1000-level book, 1-4 levels per update",
        }
        for name, feed, frames in results
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
