"""Kalshi deltas of older wire eras take a typed decode (fast replays of old recordings) that
gives exactly the rows and events of the general path, switching back on a current delta."""

from __future__ import annotations

import orjson
import pytest

from arbkit.core.sink import MemorySink
from arbkit.venues.kalshi import protocol as kalshi_protocol
from arbkit.venues.kalshi.protocol import KalshiProtocol

M = "KXBTC15M-26NOV242315-15"


def _frame(obj: dict[str, object]) -> str:
    return orjson.dumps(obj).decode() + "\n"


def _delta(seq: int, era: str, cents: int, contracts: int, side: str = "yes") -> str:
    msg: dict[str, object] = {"market_ticker": M, "market_id": "x"}
    if era != "legacy":
        msg |= {"price_dollars": f"{cents / 100:.4f}", "delta_fp": f"{contracts}.00"}
    if era != "current":
        msg |= {"price": cents, "delta": contracts}
    msg |= {"side": side, "ts": "2026-11-24T23:15:07Z"}
    if era == "current":
        msg["ts_ms"] = 1_795_000_000_000 + seq
    return _frame({"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": msg})


HEAD = [
    _frame({"type": "subscribed", "id": 1, "msg": {"channel": "orderbook_delta", "sid": 1}}),
    _frame(
        {
            "type": "orderbook_snapshot",
            "sid": 1,
            "seq": 1,
            "msg": {"market_ticker": M, "yes": [[40, 10]], "no": [[50, 10]]},
        }
    ),
]
FRAMES = [
    *HEAD,
    _delta(2, "legacy", 40, 5),
    _delta(3, "legacy", 41, 7, "no"),
    _delta(4, "legacy", 150, 1),  # price above $1: malformed, its seq lost -> gap
    _delta(5, "transitional", 42, 3),
    "not json\n",
    _delta(6, "current", 40, -5),
    _delta(7, "legacy", 39, 2),
    _delta(6, "legacy", 39, 2),  # a duplicate in the old era's decoder
]


def _run(frames: list[str]) -> tuple[KalshiProtocol, MemorySink]:
    sink = MemorySink()
    proto = KalshiProtocol(sink, markets=[M])
    for i, text in enumerate(frames):
        proto.on_message(text, 1_000 + i)
    return proto, sink


def test_old_era_deltas_give_the_general_paths_rows_and_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proto, typed = _run(FRAMES)
    monkeypatch.setattr(kalshi_protocol, "any_era_delta", lambda frame: None)
    reference, general = _run(FRAMES)
    assert len(typed.rows["kalshi_book"]) == 2 + 5  # snapshot levels + the readable deltas
    assert typed.rows == general.rows
    assert typed.counters == general.counters
    assert typed.event_kinds().count("malformed") == 2
    assert {"gap", "duplicate"} <= set(typed.event_kinds())
    assert (proto.books[M].yes, proto.books[M].no) == (
        reference.books[M].yes,
        reference.books[M].no,
    )


def test_the_decoder_follows_the_era_of_the_frames() -> None:
    proto, sink = _run(HEAD)
    assert proto._decode is kalshi_protocol.decode_frame
    proto.on_message(_delta(2, "legacy", 40, 5), 10)
    assert proto._decode is kalshi_protocol.decode_old_frame
    proto.on_message(_delta(3, "transitional", 40, 5), 11)
    assert proto._decode is kalshi_protocol.decode_old_frame
    proto.on_message(_delta(4, "current", 40, 5), 12)
    assert proto._decode is kalshi_protocol.decode_frame
    rows = sink.rows["kalshi_book"][-3:]
    expected = [(4000, 500, 2), (4000, 500, 3), (4000, 500, 4)]
    assert [(r.price_e4, r.qty_e2, r.seq) for r in rows] == expected
    assert rows[0].exch_ns == rows[1].exch_ns  # legacy ``ts`` (whole seconds), memoised
    assert rows[2].exch_ns == (1_795_000_000_000 + 4) * 1_000_000
