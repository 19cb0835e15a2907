"""Kalshi WS protocol (sans-I/O): exact commands, every wire era, real frames, seq and resync."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from arbkit.core.events import (
    EventRow,
    KalshiBookRow,
    KalshiIndexRow,
    KalshiLifecycleRow,
    KalshiTickerRow,
    KalshiTradeRow,
)
from arbkit.core.sink import MemorySink
from arbkit.venues.kalshi.book import BookInvalidError
from arbkit.venues.kalshi.protocol import TRADE_ID_MEMORY, KalshiProtocol
from arbkit.venues.kalshi.vocab import ERROR_CODES, Channel
from tests.fixtures import real_fixture
from tests.kalshi_reference import CURRENT_SNAPSHOT, TRANSITION_SNAPSHOT

T0 = 1_795_000_000_000_000_000
SEC = 1_000_000_000


def dumps(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode() + "\n"


def snapshot(seq: int, market: str, yes: Any = None, no: Any = None, sid: int = 1) -> str:
    """A current-era snapshot; ``yes``/``no`` as ``[("0.2200", "10.00"), ...]`` (None = absent)."""
    msg: dict[str, Any] = {"market_ticker": market, "market_id": "9b0f"}
    if yes is not None:
        msg["yes_dollars_fp"] = [list(level) for level in yes]
    if no is not None:
        msg["no_dollars_fp"] = [list(level) for level in no]
    return dumps({"type": "orderbook_snapshot", "sid": sid, "seq": seq, "msg": msg})


def delta(seq: int, market: str, side: str, price: str, qty: str, sid: int = 1) -> str:
    msg = {
        "market_ticker": market,
        "market_id": "9b0f",
        "price_dollars": price,
        "delta_fp": qty,
        "side": side,
        "ts": "2026-11-24T22:00:00.5Z",
        "ts_ms": 1795039200500,
    }
    return dumps({"type": "orderbook_delta", "sid": sid, "seq": seq, "msg": msg})


class Harness:
    """A protocol, its sink, and a clock; `sent` decodes what the protocol queued."""

    def __init__(self, **kw: Any) -> None:
        self.sink = MemorySink()
        kw.setdefault("channels", [Channel.BOOK])
        self.p = KalshiProtocol(self.sink, **kw)
        self.t = T0

    def open(self, conn_id: int = 1) -> list[dict[str, Any]]:
        self.p.on_open(conn_id, self.t)
        return self.sent()

    def sent(self) -> list[dict[str, Any]]:
        return [orjson.loads(text) for text in self.p.take_outgoing()]

    def feed(self, *texts: str) -> None:
        for text in texts:
            self.t += 1000
            self.p.on_message(text, self.t)

    def subscribed(self, cmd_id: int, channel: str, sid: int) -> None:
        self.feed(
            dumps({"type": "subscribed", "id": cmd_id, "msg": {"channel": channel, "sid": sid}})
        )

    def timer(self, seconds: float) -> list[dict[str, Any]]:
        self.t += int(seconds * SEC)
        self.p.on_timer(self.t)
        return self.sent()

    def events(self, kind: str | None = None) -> list[EventRow]:
        rows = [r for r in self.sink.rows["events"] if isinstance(r, EventRow)]
        return [r for r in rows if kind is None or r.kind == kind]

    def count(self, name: str) -> int:
        return self.sink.counters["kalshi_ws"][name]

    def quote(self, market: str) -> tuple[int | None, int | None] | None:
        q = self.p.books[market].quote()
        return None if q is None else (q.yes_bid_e4, q.yes_ask_e4)


def book_live(markets: tuple[str, ...] = ("A", "B"), **kw: Any) -> Harness:
    """Connected, subscribed on sid 1, both books snapshotted (seq 1, 2)."""
    h = Harness(markets=markets, **kw)
    h.open()
    h.subscribed(1, Channel.BOOK, 1)
    for i, m in enumerate(markets, start=1):
        h.feed(
            snapshot(i, m, yes=[("0.2000", "10.00"), ("0.2200", "5.00")], no=[("0.7000", "3.00")])
        )
    assert all(h.p.books[m].valid for m in markets)
    return h


# ------------------------------------------------------------------------------ commands


def test_subscribe_commands_have_the_exact_reference_shapes() -> None:
    h = Harness(
        markets=["KXBTC15M-26NOV242315-15", "KXBTCD-26NOV2423-T90999.99"],
        channels=[
            "orderbook_delta",
            "ticker",
            "trade",
            "market_lifecycle_v2",
            "cfbenchmarks_value",
        ],
        use_yes_price=True,
    )
    tickers = ["KXBTC15M-26NOV242315-15", "KXBTCD-26NOV2423-T90999.99"]
    assert h.open() == [
        {
            "id": 1,
            "cmd": "subscribe",
            "params": {
                "channels": ["orderbook_delta"],
                "market_tickers": tickers,
                "use_yes_price": True,
            },
        },
        {
            "id": 2,
            "cmd": "subscribe",
            "params": {"channels": ["ticker"], "market_tickers": tickers},
        },
        {"id": 3, "cmd": "subscribe", "params": {"channels": ["trade"], "market_tickers": tickers}},
        {"id": 4, "cmd": "subscribe", "params": {"channels": ["market_lifecycle_v2"]}},
        {
            "id": 5,
            "cmd": "subscribe",
            "params": {"channels": ["cfbenchmarks_value"], "index_ids": ["BRTI"]},
        },
    ]
    h.p.list_subscriptions(h.t)
    assert h.sent() == [{"id": 6, "cmd": "list_subscriptions"}]


def test_no_market_channel_subscribe_without_markets_then_add_and_remove() -> None:
    h = Harness(markets=[])
    assert h.open() == []
    h.p.add_markets(["A"], h.t)
    assert h.sent() == [
        {
            "id": 1,
            "cmd": "subscribe",
            "params": {"channels": ["orderbook_delta"], "market_tickers": ["A"]},
        }
    ]
    h.subscribed(1, Channel.BOOK, 9)
    h.p.add_markets(["B", "C"], h.t)
    assert h.sent() == [
        {
            "id": 2,
            "cmd": "update_subscription",
            "params": {"sid": 9, "market_tickers": ["B", "C"], "action": "add_markets"},
        }
    ]
    h.p.remove_markets(["A"], h.t)
    assert h.sent() == [
        {
            "id": 3,
            "cmd": "update_subscription",
            "params": {"sid": 9, "market_tickers": ["A"], "action": "delete_markets"},
        }
    ]
    assert "A" not in h.p.books
    h.p.remove_markets(["B", "C"], h.t)
    assert h.sent() == [{"id": 4, "cmd": "unsubscribe", "params": {"sids": [9]}}]


def test_a_removed_markets_late_snapshot_is_ignored_and_forgotten_after_a_minute() -> None:
    h = book_live(("A", "B"))
    h.p.remove_markets(["A"], h.t)
    h.sent()
    h.feed(snapshot(3, "A", yes=[("0.2000", "1.00")]))  # in flight before delete_markets
    assert "A" not in h.p.books
    assert h.p.subs[Channel.BOOK].last_seq == 3  # its seq still counts: no gap follows
    h.timer(30)
    h.feed(snapshot(4, "A", yes=[("0.2000", "1.00")]))
    assert "A" not in h.p.books
    h.timer(31)  # a minute after the removal the market is forgotten (bounded memory) ...
    assert h.p._dropped == {}
    h.p.add_markets(["A"], h.t)  # ... and following it again works as for any market
    assert h.p.books["A"].synced is False


def test_markets_added_while_subscribe_in_flight_are_added_after_subscribed() -> None:
    h = Harness(markets=["A"])
    h.open()
    h.p.add_markets(["B"], h.t)
    assert h.sent() == []
    h.subscribed(1, Channel.BOOK, 4)
    assert h.sent() == [
        {
            "id": 2,
            "cmd": "update_subscription",
            "params": {"sid": 4, "market_tickers": ["B"], "action": "add_markets"},
        }
    ]


# ------------------------------------------------------------------------------ real frames


def btc1hr_frames() -> list[tuple[int, str]]:
    path = real_fixture("kalshi", "btc1hr_ws_kxbtc_orderbook_2026-04-18.jsonl")
    return [(d["recv_ts_ns"], d["raw"]) for d in map(json.loads, path.read_text().splitlines())]


def test_btc1hr_real_frames_replay_to_exact_books() -> None:
    sink = MemorySink()
    p = KalshiProtocol(sink)
    m = "KXBTC-26APR1817-B76375"
    for recv, text in btc1hr_frames():
        p.on_message(text, recv)
        if '"seq":28,' in text:  # 0.03 -5000 (seq 17) then -213: the YES side is empty now
            q = p.books[m].quote()
            assert q is not None
            assert (q.yes_bid_e4, q.yes_ask_e4, q.yes_ask_qty_e2) == (None, 800, 17400)
    rows = [r for r in sink.rows["kalshi_book"] if isinstance(r, KalshiBookRow)]
    assert sorted({r.seq for r in rows}) == list(range(1, 70))  # contiguous on sid 1
    assert len({r.market for r in rows if r.is_snapshot}) == 8
    assert sum(not r.is_snapshot for r in rows) == 61
    events = [r for r in sink.rows["events"] if isinstance(r, EventRow)]
    assert [e.detail for e in events if e.kind == "error"] == [
        "code 8 Unknown channel name (id 1)",
        "code 8 Unknown channel name (id 1)",
        "code 8 Unknown channel name (id 99)",
    ]
    assert not [e for e in events if e.kind in ("gap", "duplicate", "malformed", "crossed")]
    assert sink.counters["kalshi_ws"]["errors"] == 3
    # Snapshot YES {0.03: 5213}; deltas 0.03 -5000, -213 (gone), 0.02 +5000, -5000 (gone),
    # 0.03 +5000, +176 -> YES {0.03: 5176}; NO unchanged, best 0.92 x 174 -> YES ask 0.08.
    book = p.books[m]
    assert book.levels("yes") == [(300, 517600)]
    assert book.levels("no")[:2] == [(9200, 17400), (9100, 500000)]
    last = [r for r in rows if r.market == m][-1]
    assert (last.price_e4, last.qty_e2, last.seq) == (300, 17600, 63)
    assert last.exch_ns == 1776490502932909000  # ts "2026-04-18T05:35:02.932909Z", no ts_ms
    assert all(b.valid for b in p.books.values())


def cockpit_frames() -> list[tuple[int, str]]:
    path = real_fixture("kalshi", "cockpit_ws_orderbook_delta_stream_2026-08-07.jsonl")
    lines = path.read_text().splitlines()[1:]  # line 1 is the capture's header
    out = []
    for line in lines:
        d = json.loads(line)
        out.append((d["received_ms"] * 1_000_000, orjson.dumps(d["frame"]).decode()))
    return out


def test_cockpit_real_frames_ok_replies_consume_seq() -> None:
    sink = MemorySink()
    p = KalshiProtocol(sink)
    for recv, text in cockpit_frames():
        p.on_message(text, recv)
    assert p.subs[Channel.BOOK].last_seq == 268
    assert sink.counters["kalshi_ws"]["gaps"] == 0
    assert len(p.books) == 12
    assert all(b.valid for b in p.books.values())
    # PHX: snapshot YES best 0.70 x 140, NO best 0.29 x 37436.50; deltas NO 0.29 -552.17,
    # YES 0.70 +30 then -30.
    q = p.books["KXWNBAGAME-26AUG07PHXCONN-PHX"].quote()
    assert q is not None
    assert (q.yes_bid_e4, q.yes_bid_qty_e2, q.yes_ask_e4, q.yes_ask_qty_e2) == (
        7000,
        14000,
        7100,
        3688433,
    )
    assert p.subs[Channel.BOOK].server_markets[-1] == "KXWNBAGAME-26AUG07PHXCONN-PHX"


def test_cockpit_without_ok_frames_shows_gaps() -> None:
    """The counter-test: if ``ok`` did not consume seq, the real stream would look gapped."""
    sink = MemorySink()
    p = KalshiProtocol(sink)
    for recv, text in cockpit_frames():
        if '"type":"ok"' not in text:
            p.on_message(text, recv)
    assert sink.counters["kalshi_ws"]["gaps"] == 11


def test_ssmd_transitional_ticker_frames() -> None:
    sink = MemorySink()
    p = KalshiProtocol(sink)
    lines = real_fixture("kalshi", "ssmd_ws_ticker_2026-02-12.jsonl").read_text().splitlines()
    for i, line in enumerate(lines):
        p.on_message(line, T0 + i)
    rows = [r for r in sink.rows["kalshi_ticker"] if isinstance(r, KalshiTickerRow)]
    assert len(rows) == 10
    assert rows[0] == KalshiTickerRow(
        T0,
        1770897976 * SEC,
        "KXXRP-26FEB1317-B1.3899500",
        1400,
        400,
        9500,
        1400,
        8400,
        1344600,
        89200,
        1,
    )
    assert not sink.rows["events"]


# ------------------------------------------------------------------------------ eras

LEGACY_SNAPSHOT = {
    "market_ticker": "FED-23DEC-T3.00",
    "yes": [[8, 300], [22, 333]],
    "no": [[54, 20], [56, 146]],
}
OLDEST_SNAPSHOT = {
    "market_ticker": "FED-23DEC-T3.00",
    "yes_dollars": [["0.080", 300], ["0.220", 333]],
    "no_dollars": [["0.540", 20], ["0.560", 146]],
}
LEGACY_DELTA = {"market_ticker": "FED-23DEC-T3.00", "price": 22, "delta": -33, "side": "yes"}
TRANSITIONAL_DELTA = {
    "market_ticker": "FED-23DEC-T3.00",
    "market_id": "9b0f",
    "price": 22,
    "price_dollars": "0.220",
    "delta": -33,
    "delta_fp": "-33.00",
    "side": "yes",
    "ts": "2022-11-22T20:44:01Z",
}
CURRENT_DELTA = {
    "market_ticker": "FED-23DEC-T3.00",
    "market_id": "9b0f",
    "price_dollars": "0.2200",
    "delta_fp": "-33.00",
    "side": "yes",
    "ts": "2022-11-22T20:44:01Z",
    "ts_ms": 1669149841000,
}


@pytest.mark.parametrize(
    ("snap", "dlt", "exch_ns"),
    [
        (LEGACY_SNAPSHOT, LEGACY_DELTA, None),
        (OLDEST_SNAPSHOT, LEGACY_DELTA, None),
        (TRANSITION_SNAPSHOT, TRANSITIONAL_DELTA, 1669149841 * SEC),
        (CURRENT_SNAPSHOT, CURRENT_DELTA, 1669149841 * SEC),
    ],
    ids=["legacy", "oldest", "transitional", "current"],
)
def test_every_wire_era_builds_the_same_exact_book(
    snap: dict[str, Any], dlt: dict[str, Any], exch_ns: int | None
) -> None:
    h = Harness(markets=["FED-23DEC-T3.00"])
    h.open()
    h.subscribed(1, Channel.BOOK, 2)
    h.feed(dumps({"type": "orderbook_snapshot", "sid": 2, "seq": 1, "msg": snap}))
    h.feed(dumps({"type": "orderbook_delta", "sid": 2, "seq": 2, "msg": dlt}))
    book = h.p.books["FED-23DEC-T3.00"]
    assert book.levels("yes") == [(2200, 30000), (800, 30000)]
    assert book.levels("no") == [(5600, 14600), (5400, 2000)]
    assert h.quote("FED-23DEC-T3.00") == (2200, 4400)
    last = h.sink.rows["kalshi_book"][-1]
    assert isinstance(last, KalshiBookRow)
    assert (last.side, last.price_e4, last.qty_e2, last.is_snapshot, last.exch_ns) == (
        "yes",
        2200,
        -3300,
        False,
        exch_ns,
    )
    assert not h.events("malformed")


def test_snapshot_with_absent_sides_records_one_reset_row() -> None:
    h = Harness(markets=["A"])
    h.open()
    h.subscribed(1, Channel.BOOK, 1)
    h.feed(snapshot(1, "A", yes=[("0.3000", "1.00")]), snapshot(2, "A"))
    rows = [r for r in h.sink.rows["kalshi_book"] if isinstance(r, KalshiBookRow)]
    assert [(r.side, r.price_e4, r.qty_e2, r.seq) for r in rows] == [
        ("yes", 3000, 100, 1),
        ("", 0, 0, 2),
    ]
    assert h.quote("A") == (None, None)


def test_delta_with_other_key_order_takes_the_general_path_to_the_same_row() -> None:
    a, b = book_live(), book_live()
    text = delta(3, "A", "no", "0.7000", "-1.50")
    a.feed(text)
    reordered = orjson.loads(text)
    b.feed(
        dumps(
            {"seq": reordered["seq"], "msg": reordered["msg"], "sid": 1, "type": "orderbook_delta"}
        )
    )
    assert a.sink.rows["kalshi_book"][-1] == b.sink.rows["kalshi_book"][-1]
    assert a.p.books["A"].levels("no") == b.p.books["A"].levels("no") == [(7000, 150)]


def test_sending_ts_ms_is_the_fallback_venue_time() -> None:
    h = book_live()
    h.feed(
        dumps(
            {
                "type": "orderbook_delta",
                "sid": 1,
                "seq": 3,
                "sending_ts_ms": 1795000000123,
                "msg": {
                    "market_ticker": "A",
                    "price_dollars": "0.2000",
                    "delta_fp": "1.00",
                    "side": "yes",
                },
            }
        )
    )
    last = h.sink.rows["kalshi_book"][-1]
    assert isinstance(last, KalshiBookRow)
    assert last.exch_ns == 1795000000123_000_000


# ------------------------------------------------------------------------------ sequence


def test_duplicate_is_ignored_and_counted() -> None:
    h = book_live()
    h.feed(delta(3, "A", "yes", "0.2200", "1.00"))
    h.feed(delta(3, "A", "yes", "0.2200", "1.00"))
    assert h.p.books["A"].levels("yes")[0] == (2200, 600)
    assert h.count("duplicates") == 1
    (dup,) = h.events("duplicate")
    assert (dup.expected, dup.got) == (4, 3)
    assert h.sent() == []


def test_gap_invalidates_every_book_of_the_sid_and_get_snapshot_repairs() -> None:
    h = book_live()
    h.sent()
    h.feed(delta(3, "A", "yes", "0.2200", "1.00"), delta(6, "B", "yes", "0.2200", "1.00"))
    (gap,) = h.events("gap")
    assert (gap.expected, gap.got, gap.subject) == (4, 6, Channel.BOOK)
    assert h.count("gaps") == 1
    for m in ("A", "B"):
        assert not h.p.books[m].valid
        assert h.p.books[m].quote() is None
        with pytest.raises(BookInvalidError, match="seq gap"):
            h.p.books[m].levels("yes")
    assert h.sent() == [
        {
            "id": 2,
            "cmd": "update_subscription",
            "params": {"sid": 1, "market_tickers": ["A", "B"], "action": "get_snapshot"},
        }
    ]
    h.feed(
        dumps({"type": "ok", "id": 2, "sid": 1, "seq": 7, "msg": {"market_tickers": ["A", "B"]}})
    )
    h.feed(delta(8, "A", "yes", "0.2200", "1.00"))  # applies to no invalid book
    h.feed(snapshot(9, "A", yes=[("0.2500", "2.00")], no=[("0.6000", "1.00")]))
    assert h.quote("A") == (2500, 4000)
    assert not h.p.books["B"].valid
    assert not h.events("resync")[1:]
    h.feed(snapshot(10, "B", yes=[("0.1000", "2.00")]))
    assert h.quote("B") == (1000, None)
    assert h.events("resync")[-1].detail == "books restored on sid 1"
    assert h.count("resyncs") == 1
    assert h.timer(10) == []  # nothing left to escalate


def test_resync_escalates_to_resubscribe_then_reconnect() -> None:
    h = book_live(resync_timeout=2.0)
    h.sent()
    h.feed(delta(5, "A", "yes", "0.2200", "1.00"))
    assert h.sent()[0]["params"]["action"] == "get_snapshot"
    assert h.timer(1.0) == []
    assert h.timer(1.5) == [
        {"id": 3, "cmd": "unsubscribe", "params": {"sids": [1]}},
        {
            "id": 4,
            "cmd": "subscribe",
            "params": {"channels": ["orderbook_delta"], "market_tickers": ["A", "B"]},
        },
    ]
    h.subscribed(4, Channel.BOOK, 2)
    h.feed(delta(6, "A", "yes", "0.2200", "1.00", sid=1))  # old sid: ignored
    assert h.count("stale_sid") == 1
    assert h.p.reconnect_reason is None
    h.timer(2.5)  # no snapshot at all on the new sid either
    assert (
        h.p.reconnect_reason == "orderbook_delta resync failed: 2 snapshots late after resubscribe"
    )


def test_market_without_snapshot_after_resubscribe_is_dropped() -> None:
    h = book_live(resync_timeout=2.0)
    h.feed(delta(5, "A", "yes", "0.2200", "1.00"))
    h.timer(2.5)
    h.subscribed(4, Channel.BOOK, 2)
    h.sent()
    h.feed(snapshot(1, "A", sid=2, yes=[("0.2000", "1.00")]))
    sent = h.timer(2.5)  # A came back, B never did: the server no longer serves B
    assert h.p.reconnect_reason is None
    assert h.p.markets == {"A"}
    assert [e.subject for e in h.events("dropped")] == ["B"]
    assert sent == [
        {
            "id": 5,
            "cmd": "update_subscription",
            "params": {"sid": 2, "market_tickers": ["B"], "action": "delete_markets"},
        }
    ]
    assert h.p.books["A"].valid


def test_below_zero_level_resyncs_that_market() -> None:
    h = book_live()
    h.sent()
    h.feed(delta(3, "A", "no", "0.7000", "-3.01"))
    assert not h.p.books["A"].valid
    assert h.p.books["B"].valid
    assert h.sent() == [
        {
            "id": 2,
            "cmd": "update_subscription",
            "params": {"sid": 1, "market_tickers": ["A"], "action": "get_snapshot"},
        }
    ]


def test_crossed_book_is_invalid_and_resynced_if_it_stays_crossed() -> None:
    h = book_live()
    h.sent()
    h.feed(delta(3, "A", "no", "0.7800", "1.00"))  # YES bid 0.22 + NO bid 0.78 = $1
    assert h.quote("A") is None
    assert h.timer(0.5) == []
    assert [e.subject for e in h.events("crossed")] == ["A"]
    assert h.timer(0.6) == []
    (cmd,) = h.timer(0.5)
    assert cmd["params"] == {"sid": 1, "market_tickers": ["A"], "action": "get_snapshot"}
    assert [e.subject for e in h.events("crossed")] == ["A"]


def test_passing_cross_is_recorded_but_not_resynced() -> None:
    h = book_live()
    h.sent()
    h.feed(delta(3, "A", "no", "0.7800", "1.00"))
    assert h.timer(0.5) == []
    h.feed(delta(4, "A", "no", "0.7800", "-1.00"))
    assert h.quote("A") == (2200, 3000)
    assert h.timer(2.0) == []


def test_disconnect_invalidates_and_reconnect_resubscribes_the_same_markets() -> None:
    h = book_live()
    h.p.add_markets(["C"], h.t)
    h.sent()
    h.p.on_close(h.t, "closed by server")
    assert not any(b.valid for b in h.p.books.values())
    assert h.open(conn_id=2) == [
        {
            "id": 3,
            "cmd": "subscribe",
            "params": {"channels": ["orderbook_delta"], "market_tickers": ["A", "B", "C"]},
        }
    ]
    h.subscribed(3, Channel.BOOK, 5)
    h.feed(snapshot(1, "A", sid=5, yes=[("0.2000", "1.00")]))
    assert h.p.books["A"].valid
    assert not h.p.books["B"].valid
    row = h.sink.rows["kalshi_book"][-1]
    assert isinstance(row, KalshiBookRow)
    assert (row.conn_id, row.sid) == (2, 5)


# ------------------------------------------------------------------------------ errors


def error(cmd_id: int | None, code: int, **extra: Any) -> str:
    frame: dict[str, Any] = {
        "type": "error",
        "msg": {"code": code, "msg": ERROR_CODES[code], **extra},
    }
    if cmd_id is not None:
        frame["id"] = cmd_id
    return dumps(frame)


@pytest.mark.parametrize(
    ("code", "cmds"),
    [(10, ["unsubscribe", "subscribe"]), (17, ["unsubscribe", "subscribe"]), (25, ["subscribe"])],
)
def test_channel_failures_resubscribe(code: int, cmds: list[str]) -> None:
    h = book_live()
    h.sent()
    h.feed(dumps({"type": "error", "sid": 1, "msg": {"code": code, "msg": ERROR_CODES[code]}}))
    assert [c["cmd"] for c in h.sent()] == cmds  # after 25 the server has dropped the sid
    assert not h.p.books["A"].valid
    assert h.events("error")[0].detail.startswith(f"code {code} ")


def test_unattributable_buffer_overflow_reconnects() -> None:
    h = book_live()
    h.feed(error(None, 25))
    assert h.p.reconnect_reason is not None
    assert "25" in h.p.reconnect_reason


def test_unknown_sid_error_resubscribes() -> None:
    h = book_live()
    h.p.add_markets(["C"], h.t)
    h.sent()
    h.feed(error(2, 7))
    assert [c["cmd"] for c in h.sent()] == ["subscribe"]
    h.subscribed(3, Channel.BOOK, 2)
    h.feed(error(2, 7))  # a late error about the replaced sid changes nothing
    assert h.sent() == []
    assert h.p.subs[Channel.BOOK].sid == 2


def test_error_on_unsubscribe_is_only_recorded() -> None:
    h = book_live(resync_timeout=1.0)
    h.feed(delta(9, "A", "yes", "0.2200", "1.00"))
    assert h.sent()[-1]["params"]["action"] == "get_snapshot"
    (unsub, _) = h.timer(1.1)  # get_snapshot timed out: unsubscribe + subscribe
    assert unsub["cmd"] == "unsubscribe"
    h.feed(error(unsub["id"], 7))
    assert h.sent() == []
    assert h.p.reconnect_reason is None


def test_already_subscribed_adopts_the_servers_sid() -> None:
    h = Harness(markets=["A"])
    h.open()
    h.feed(error(1, 6))
    assert h.sent() == [{"id": 2, "cmd": "list_subscriptions"}]
    h.feed(dumps({"type": "ok", "id": 2, "msg": [{"channel": "orderbook_delta", "sid": 3}]}))
    assert h.p.server_subscriptions == {3: Channel.BOOK}
    assert h.sent() == [
        {
            "id": 3,
            "cmd": "update_subscription",
            "params": {"sid": 3, "market_tickers": ["A"], "action": "get_snapshot"},
        }
    ]
    h.feed(snapshot(41, "A", sid=3, yes=[("0.5000", "1.00")]))  # seq base adopted
    assert h.quote("A") == (5000, None)
    assert not h.events("gap")


def test_market_not_found_drops_the_market() -> None:
    h = book_live()
    h.sent()
    h.feed(error(None, 16, market_ticker="B"))
    assert "B" not in h.p.books
    assert "B" not in h.p.markets
    assert h.sent() == [
        {
            "id": 2,
            "cmd": "update_subscription",
            "params": {"sid": 1, "market_tickers": ["B"], "action": "delete_markets"},
        }
    ]
    assert [e.subject for e in h.events("dropped")] == ["B"]


def test_market_not_found_on_subscribe_retries_without_it() -> None:
    h = Harness(markets=["A", "BAD"])
    h.open()
    h.feed(error(1, 16, market_ticker="BAD"))
    assert h.sent() == [
        {
            "id": 2,
            "cmd": "subscribe",
            "params": {"channels": ["orderbook_delta"], "market_tickers": ["A"]},
        }
    ]


def test_market_limit_on_add_drops_those_markets() -> None:
    h = book_live()
    h.p.add_markets(["C", "D"], h.t)
    h.sent()
    h.feed(error(2, 26))
    assert h.p.markets == {"A", "B"}
    assert [e.subject for e in h.events("dropped")] == ["C", "D"]


@pytest.mark.parametrize(("code", "kind"), [(8, "error"), (9, "auth")])
def test_unknown_channel_and_auth_disable_the_channel(code: int, kind: str) -> None:
    h = Harness(markets=["A"], channels=[Channel.BOOK, "cfbenchmarks_value"])
    h.open()
    h.feed(error(2, code))
    assert "cfbenchmarks_value" in h.p.disabled
    assert h.events(kind)
    h.p.on_close(h.t, "x")
    resent = [c["params"]["channels"][0] for c in h.open(2)]
    # Unknown channel stays off; an auth refusal is retried on the next (re-signed) connection.
    assert resent == ([Channel.BOOK] if code == 8 else [Channel.BOOK, "cfbenchmarks_value"])


def test_rate_limited_command_is_backed_off_then_resent() -> None:
    h = book_live()
    h.p.add_markets(["C"], h.t)
    (add,) = h.sent()
    h.feed(error(add["id"], 27))
    assert h.events("rate_limit")
    assert h.timer(0.5) == []
    (again,) = h.timer(0.6)
    assert again["params"] == add["params"]
    assert again["id"] != add["id"]


@pytest.mark.parametrize("code", [17, 18, 27])
def test_a_refused_unsubscribe_is_sent_again(code: int) -> None:
    h = book_live(("A",))
    h.p.remove_markets(["A"], h.t)
    (unsub,) = h.sent()
    assert unsub["cmd"] == "unsubscribe"
    h.feed(error(unsub["id"], code))
    (again,) = h.timer(1.1)
    assert (again["cmd"], again["params"]) == ("unsubscribe", {"sids": [1]})


def test_a_deferred_update_keeps_only_what_still_applies() -> None:
    h = book_live(("A", "B"))
    h.p.add_markets(["C", "D"], h.t)
    (add,) = h.sent()
    h.feed(error(add["id"], 27))
    h.p.remove_markets(["C"], h.t)  # C removed while the add waits to be resent
    h.sent()
    (again,) = h.timer(1.1)
    assert again["params"] == {"sid": 1, "market_tickers": ["D"], "action": "add_markets"}
    h.p.add_markets(["E"], h.t)
    (add,) = h.sent()
    h.feed(error(add["id"], 18))
    h.p.remove_markets(["E"], h.t)  # nothing left to add: the resend is dropped
    h.sent()
    assert h.timer(1.1) == []


def test_update_refused_by_server_falls_back_to_resubscribe() -> None:
    h = book_live()
    h.p.add_markets(["C"], h.t)
    h.sent()
    h.feed(error(2, 12))
    assert [c["cmd"] for c in h.sent()] == ["unsubscribe", "subscribe"]


def test_every_error_code_is_recorded_and_never_crashes() -> None:
    h = book_live()
    for code in ERROR_CODES:
        h.feed(error(99, code))
    assert h.count("errors") == len(ERROR_CODES) == 28
    assert len(h.events("error")) + len(h.events("auth")) + len(h.events("rate_limit")) == 28
    assert h.count("malformed") == 0


def test_unanswered_command_is_resent_then_reconnects() -> None:
    h = Harness(markets=["A"], command_timeout=5.0)
    h.open()
    assert [c["id"] for c in h.timer(6)] == [2]
    assert [c["id"] for c in h.timer(6)] == [3]
    h.timer(6)
    assert h.p.reconnect_reason == "no reply to subscribe after 3 attempts"


def test_a_subscribe_answered_twice_unsubscribes_the_older_sid() -> None:
    h = Harness(markets=["A"], command_timeout=5.0)
    h.open()
    (resent,) = h.timer(6)  # no reply in time: the subscribe goes out again as id 2
    h.subscribed(1, Channel.BOOK, 7)  # the late answer to id 1 ...
    h.subscribed(resent["id"], Channel.BOOK, 8)  # ... and the answer to the resend
    assert h.sent()[-1] == {"id": 3, "cmd": "unsubscribe", "params": {"sids": [7]}}
    assert h.p.subs[Channel.BOOK].sid == 8


# ------------------------------------------------------------------------------ malformed


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        '{"type":"mystery","sid":1}',
        '{"type":"orderbook_snapshot","sid":1,"seq":3}',
        '{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","side":"yes"}}',
        '{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","price_dollars":"abc","delta_fp":"1.00","side":"yes"}}',
        '{"type":"orderbook_delta","sid":1,"seq":"3","msg":{"market_ticker":"A","price_dollars":"0.2","delta_fp":"1.00","side":"up"}}',
        '{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","price_dollars":"0.2200","delta_fp":"1.00","side":"maybe"}}',
        delta(3, "A", "yes", "1.5000", "1.00"),  # current era (hot path): price above $1
        delta(3, "A", "yes", "0.2200", "1.0x"),  # current era (hot path): size not a number
        '{"type":"ticker","sid":1,"msg":{"market_ticker":5,"price_dollars":"0.5000"}}',
        '{"type":"trade","sid":"x","msg":{"market_ticker":"A","yes_price":3,"count":1}}',
    ],
)
def test_malformed_frames_are_counted_and_the_session_goes_on(text: str) -> None:
    h = book_live()
    h.sent()
    h.feed(text)
    assert h.count("malformed") == 1
    assert len(h.events("malformed")) == 1
    assert h.p.books["A"].levels("yes")[0] == (2200, 500)  # nothing half-applied
    h.feed(delta(3, "A", "yes", "0.2200", "1.00"))
    assert h.p.books["A"].levels("yes")[0] == (2200, 600)


def test_lost_frame_shows_up_as_a_gap() -> None:
    h = book_live()
    h.feed(
        '{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","price_dollars":"7","delta_fp":"1","side":"yes"}}'
    )
    h.feed(delta(4, "A", "yes", "0.2200", "1.00"))
    assert h.count("malformed") == 1
    assert h.count("gaps") == 1
    assert not h.p.books["A"].valid


# ------------------------------------------------------------------------------ other channels


def test_use_yes_price_books_and_rows() -> None:
    h = Harness(markets=["A"], use_yes_price=True)
    assert h.open()[0]["params"]["use_yes_price"] is True
    h.subscribed(1, Channel.BOOK, 1)
    assert h.events("subscribed")[0].detail == "sid 1 use_yes_price=True"
    h.feed(snapshot(1, "A", yes=[("0.4000", "1.00")], no=[("0.4400", "10.00"), ("0.4600", "2.00")]))
    assert h.quote("A") == (4000, 4400)
    h.feed(delta(2, "A", "no", "0.4400", "-10.00"))
    assert h.quote("A") == (4000, 4600)
    last = h.sink.rows["kalshi_book"][-1]
    assert isinstance(last, KalshiBookRow)
    assert (last.side, last.price_e4) == ("no", 4400)  # rows keep the wire's scale
    assert h.p.books["A"].yes_scale


def test_trade_rows_current_and_legacy() -> None:
    h = Harness(markets=["A"], channels=["trade"])
    h.open()
    h.subscribed(1, "trade", 3)
    h.feed(
        dumps(
            {
                "type": "trade",
                "sid": 3,
                "msg": {
                    "trade_id": "d91b",
                    "market_ticker": "A",
                    "yes_price_dollars": "0.3600",
                    "no_price_dollars": "0.6400",
                    "count_fp": "136.50",
                    "taker_side": "no",
                    "ts": 1669149841,
                    "ts_ms": 1669149841250,
                },
            }
        ),
        dumps(
            {
                "type": "trade",
                "sid": 3,
                "msg": {
                    "trade_id": "e1",
                    "market_ticker": "A",
                    "yes_price": 36,
                    "count": 136,
                    "taker_side": "yes",
                    "ts": 1669149841,
                },
            }
        ),
    )
    rows = [r for r in h.sink.rows["kalshi_trades"] if isinstance(r, KalshiTradeRow)]
    assert [(r.yes_price_e4, r.count_e2, r.taker_side, r.exch_ns) for r in rows] == [
        (3600, 13650, "no", 1669149841250 * 1_000_000),
        (3600, 13600, "yes", 1669149841 * SEC),
    ]


def test_cfbenchmarks_value_reference_example() -> None:
    h = Harness(channels=["cfbenchmarks_value"])
    h.open()
    h.subscribed(1, "cfbenchmarks_value", 1)
    h.feed(
        dumps(
            {
                "type": "cfbenchmarks_value",
                "sid": 1,
                "seq": 1,
                "sending_ts_ms": 1669149841234,
                "msg": {
                    "index_id": "BRTI",
                    "received_at": 1710000000123,
                    "data": '{"type":"value","id":"BRTI","time":1710000000123,"value":"68000.12"}',
                    "avg_60s_data": {"value": "68000.12000000", "window_size": 3},
                    "last_60s_windowed_average_15min": {
                        "value": "68000.23000000",
                        "window_size": 14,
                    },
                },
            }
        )
    )
    (row,) = h.sink.rows["kalshi_cf_index"]
    assert row == KalshiIndexRow(
        h.t,
        1669149841234_000_000,
        "BRTI",
        1710000000123_000_000,
        6800012000000,
        6800012000000,
        6800023000000,
        14,
        1,
        1,
    )


def lifecycle(market: str, event_type: str, **extra: Any) -> str:
    return dumps(
        {
            "type": "market_lifecycle_v2",
            "sid": 7,
            "msg": {"market_ticker": market, "event_type": event_type, **extra},
        }
    )


def test_lifecycle_rows_and_rollover_of_followed_series() -> None:
    seen: list[KalshiLifecycleRow] = []
    h = Harness(
        markets=["KXBTC15M-26NOV242300-00"],
        channels=[Channel.BOOK, "market_lifecycle_v2"],
        follow_series=["KXBTC15M"],
        on_lifecycle=seen.append,
    )
    h.open()
    h.subscribed(1, Channel.BOOK, 1)
    h.subscribed(2, "market_lifecycle_v2", 7)
    h.sent()
    h.feed(lifecycle("KXBTC15M-26NOV242315-15", "created", open_ts=1795040100, close_ts=1795041000))
    h.feed(lifecycle("KXETH15M-26NOV242315-15", "activated"))  # another series: not followed
    assert h.sent() == [
        {
            "id": 3,
            "cmd": "update_subscription",
            "params": {
                "sid": 1,
                "market_tickers": ["KXBTC15M-26NOV242315-15"],
                "action": "add_markets",
            },
        }
    ]
    h.feed(lifecycle("KXBTC15M-26NOV242300-00", "settled", result="yes"))
    assert h.sent()[0]["params"] == {
        "sid": 1,
        "market_tickers": ["KXBTC15M-26NOV242300-00"],
        "action": "delete_markets",
    }
    assert h.p.markets == {"KXBTC15M-26NOV242315-15"}
    assert [(r.event_type, r.open_ns, r.close_ns, r.result) for r in seen] == [
        ("created", 1795040100 * SEC, 1795041000 * SEC, None),
        ("activated", None, None, None),
        ("settled", None, None, "yes"),
    ]
    assert json.loads(seen[0].detail)["close_ts"] == 1795041000


# ------------------------------------------------------------------------------ liveness


def test_a_silent_connection_marks_the_books_stale_before_the_reconnect() -> None:
    """No frame and no ping (Kalshi pings every 10 s): the books stop being vouched for once
    a ping is overdue, long before the 25 s watchdog; frames resuming with seq unbroken
    make them fresh again, and a new connection's snapshots recover them after a reconnect."""
    h = book_live()
    h.timer(5.0)
    h.p.on_ping(h.t)  # a ping alone keeps the books valid
    h.timer(9.0)
    assert set(h.p.valid_books()) == {"A", "B"}
    assert not h.events("stale")
    h.timer(3.0)  # 12 s since the ping: overdue
    (stale,) = h.events("stale")
    assert "no frame or ping" in stale.detail
    assert h.p.valid_books() == {}
    assert h.quote("A") is None
    assert h.count("stale") == 1
    h.timer(5.0)
    assert len(h.events("stale")) == 1  # flagged once per silence
    h.feed(delta(3, "A", "yes", "0.2200", "1.00"))  # the stall ends, nothing was lost
    assert set(h.p.valid_books()) == {"A", "B"}
    (recovered,) = h.events("recovered")
    assert "frames resumed" in recovered.detail
    assert h.quote("A") == (2200, 3000)

    h.timer(12.0)
    assert h.p.valid_books() == {}
    h.p.on_close(h.t, "silent for 25 s")
    h.open(2)
    h.subscribed(2, Channel.BOOK, 5)
    h.feed(snapshot(1, "A", yes=[("0.2100", "1.00")], sid=5))
    assert set(h.p.valid_books()) == {"A"}
    assert h.events("recovered")[1].detail.startswith("snapshot on a new connection")


def test_trades_and_tickers_without_seq_drop_repeated_frames() -> None:
    h = Harness(markets=["A"], channels=[Channel.TRADE, Channel.TICKER])
    h.open()
    h.subscribed(1, Channel.TRADE, 1)
    h.subscribed(2, Channel.TICKER, 2)

    def trade(trade_id: str) -> str:
        msg = {"trade_id": trade_id, "market_ticker": "A", "yes_price_dollars": "0.4200"}
        msg |= {"count_fp": "3.00", "taker_side": "yes", "ts": 1795039200, "ts_ms": 1795039200500}
        return dumps({"type": "trade", "sid": 1, "msg": msg})

    ticker = dumps(
        {
            "type": "ticker",
            "sid": 2,
            "msg": {"market_ticker": "A", "price_dollars": "0.4200", "ts_ms": 1795039200500},
        }
    )
    h.feed(trade("t1"), trade("t1"), trade("t2"), ticker, ticker)
    assert [r.trade_id for r in h.sink.rows["kalshi_trades"]] == ["t1", "t2"]
    assert len(h.sink.rows["kalshi_ticker"]) == 1
    assert h.count("duplicates") == 2
    assert [e.subject for e in h.events("duplicate")] == ["trade", "ticker"]
    h.feed(ticker.replace("0.4200", "0.4300"))  # a new value is not a duplicate
    assert len(h.sink.rows["kalshi_ticker"]) == 2


def test_trade_id_memory_is_bounded() -> None:
    h = Harness(markets=["A"], channels=[Channel.TRADE])
    h.open()
    h.subscribed(1, Channel.TRADE, 1)
    for i in range(TRADE_ID_MEMORY + 50):
        msg = {"trade_id": f"t{i}", "market_ticker": "A", "yes_price_dollars": "0.4200"}
        h.p.on_message(dumps({"type": "trade", "sid": 1, "msg": msg | {"count_fp": "1.00"}}), i)
    assert len(h.p._trade_ids) == TRADE_ID_MEMORY


def test_a_connection_has_delivered_once_a_snapshot_arrived() -> None:
    """What resets the reconnect backoff (`runner.Delivering`): a subscribe alone does not."""
    h = Harness(markets=["A"])
    h.open()
    h.subscribed(1, Channel.BOOK, 1)
    assert not h.p.delivered()
    h.feed(snapshot(1, "A", yes=[("0.2000", "1.00")]))
    assert h.p.delivered()
    h.p.on_close(h.t, "dropped")
    h.open(2)
    assert not h.p.delivered()
