"""The Kalshi world's plain parts: schedule and tickers (US Eastern, DST), settlement rule,
fair value, signatures, and every wire era compared key by key with the reference's JSON
examples and the real captures."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from arbkit.sim.kalshi.auth import (
    KEY_HEADER,
    SIG_HEADER,
    TS_HEADER,
    KeyRing,
    Verdict,
    signed_headers,
)
from arbkit.sim.kalshi.exchange import BookEvent, Exchange, IndexEvent, TradeEvent
from arbkit.sim.kalshi.makers import Book, fair_yes
from arbkit.sim.kalshi.markets import NS, IndexTape, Market, Schedule, event_code
from arbkit.sim.kalshi.wire import Wire
from tests.fixtures import real_fixture
from tests.kalshi_reference import CURRENT_SNAPSHOT, TRANSITION_SNAPSHOT


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * NS


def flat(price: float) -> IndexTape:
    return IndexTape(lambda _t: price)


# --- schedule and tickers ---------------------------------------------------------------------


def quiet_exchange(tape: IndexTape, seed: int) -> Exchange:
    """An exchange with no lag, noise, quote updates or trades: only the schedule moves."""
    return Exchange(
        tape,
        seed=seed,
        legacy_grid=False,
        lag_s=0,
        noise=0,
        update_hz=0,
        trade_hz=0,
        annual_vol=0.5,
        ladder=1,
    )


def test_event_codes_match_live_examples_in_both_dst_states() -> None:
    # KXBTC15M-26JUL232045-45 closes 00:45Z on Jul 24 2026 = 8:45 PM EDT Jul 23 (§6).
    assert event_code(ns("2026-07-24T00:45:00"), minute=True) == "26JUL232045"
    # KXBTCD-26AUG2317-T86749.99 closes 21:00Z = 5 PM EDT.
    assert event_code(ns("2026-08-23T21:00:00"), minute=False) == "26AUG2317"
    # Winter: 17:00Z is noon EST.
    assert event_code(ns("2026-12-01T17:00:00"), minute=False) == "26DEC0112"


def test_schedule_across_the_fall_back_dst_boundary() -> None:
    # 2026-11-01 06:00Z is 01:00 EST (after the 02:00 EDT -> 01:00 EST fall-back at 06:00Z);
    # 05:45Z is 01:45 EDT: the same wall-clock hour appears twice, tickers must follow ET.
    rng = random.Random(1)
    sched = Schedule(flat(100_000.0), rng)
    before = {m.ticker for m in sched.due(ns("2026-11-01T05:40:00"))}
    assert "KXBTC15M-26NOV010145-45" in before  # closes 05:45Z = 1:45 AM EDT
    assert "KXBTC15M-26NOV010100-00" in before  # closes 06:00Z = 1:00 AM EST
    after = {m.ticker for m in sched.due(ns("2026-11-01T06:05:00"))}
    assert "KXBTC15M-26NOV010115-15" in after
    hourly = sorted(t for t in before if t.startswith("KXBTCD-"))
    assert hourly[0].startswith("KXBTCD-26NOV0101-T")  # close 06:00Z = 01:00 EST


def test_schedule_spring_forward_and_ladder_shapes() -> None:
    # 2026-03-08 07:00Z: 02:00 EST jumps to 03:00 EDT.
    sched = Schedule(flat(86_750.00), random.Random(2), ladder=2, step_e2=25_000)
    ms = {m.ticker: m for m in sched.due(ns("2026-03-08T06:50:00"))}
    assert "KXBTC15M-26MAR080300-00" in ms  # 07:00Z = 3:00 AM EDT
    assert "KXBTCD-26MAR0803-T86749.99" in ms
    assert "KXBTCD-26MAR0804-T86749.99" in ms  # the following hour: 08:00Z = 4 AM EDT
    t = ms["KXBTCD-26MAR0803-T86749.99"]
    assert (t.strike_type, t.floor_e2, t.cap_e2) == ("greater", 8_674_999, None)
    assert t.close_ns - t.open_ns == 3600 * NS
    b = ms["KXBTC-26MAR0803-B86625"]
    assert (b.strike_type, b.floor_e2, b.cap_e2) == ("between", 8_650_000, 8_674_999)
    m15 = ms["KXBTC15M-26MAR080300-00"]
    assert (m15.strike_type, m15.floor_e2, m15.status) == ("greater_or_equal", None, "initialized")
    assert "3:00 AM EDT" in m15.rules_primary
    assert "1:45 AM EST" in m15.rules_primary
    assert sched.due(ns("2026-03-08T06:50:00")) == []  # created once


# --- settlement -------------------------------------------------------------------------------


def test_settlement_uses_the_60_second_average_before_close_and_open() -> None:
    # Index = 60000.00 + (second mod 100) cents: averages are exactly predictable.
    def index(t_ns: int) -> float:
        return 60_000 + (t_ns // NS % 100) / 100

    tape = IndexTape(index)
    close = ns("2026-07-24T00:45:00")
    secs = range(close // NS - 60, close // NS)
    expect_e2 = sum(6_000_000 + s % 100 for s in secs)
    assert tape.average_e2(close) == (2 * expect_e2 + 60) // 120

    ex = quiet_exchange(tape, seed=3)
    ex.step(close - 16 * 60 * NS)
    t15 = "KXBTC15M-26JUL232045-45"
    ex.step(close - 15 * 60 * NS + NS)
    m = ex.markets[t15]
    assert m.status == "active"
    assert m.floor_e2 == tape.average_e2(m.open_ns)
    ex.step(close + NS)
    assert m.status == "closed"
    assert ex.books[t15] == Book()
    ex.step(close + 3 * NS)
    assert m.status == "determined"
    assert m.expiration_e2 == tape.average_e2(close)
    assert m.result == ("yes" if m.expiration_e2 >= m.floor_e2 else "no")
    ex.step(close + 7 * NS)
    assert m.status == "finalized"
    assert m.settled_ns is not None


@pytest.mark.parametrize(
    ("kind", "floor", "cap", "value", "yes"),
    [
        ("greater_or_equal", 6_483_926, None, 6_483_926, True),
        ("greater_or_equal", 6_483_926, None, 6_483_925, False),
        ("greater", 8_674_999, None, 8_674_999, False),
        ("greater", 8_674_999, None, 8_675_000, True),
        ("between", 8_460_000, 8_469_999, 8_469_999, True),
        ("between", 8_460_000, 8_469_999, 8_470_000, False),
        ("less", None, 8_460_000, 8_459_999, True),
    ],
)
def test_contract_rules(
    kind: str, floor: int | None, cap: int | None, value: int, yes: bool
) -> None:
    m = Market("T", "E", "S", "id", 0, 0, 1, kind, floor, cap, "", "", "", "")
    assert m.settles_yes(value) is yes


def test_fair_value_moves_with_index_and_time() -> None:
    m = Market(
        "T", "E", "S", "id", 0, 0, 900 * NS, "greater_or_equal", 10_000_000, None, "", "", "", ""
    )
    at = fair_yes(m, 10_000_000, 0, 0.5)
    assert at is not None
    assert abs(at - 0.5) < 1e-9
    up = fair_yes(m, 10_010_000, 0, 0.5)
    late = fair_yes(m, 10_010_000, 890 * NS, 0.5)
    assert up is not None
    assert late is not None
    assert 0.5 < up < late < 1.0


# --- signatures -------------------------------------------------------------------------------


def test_signature_verification_accepts_real_pss_and_rejects_tampering(tmp_path: Path) -> None:
    ring = KeyRing()
    creds = ring.generate(tmp_path)
    assert creds.private_key_path.stat().st_mode & 0o777 == 0o600
    key = creds.load_private_key()
    now = 1_790_000_000_000
    path = "/trade-api/ws/v2"
    good = signed_headers(creds.key_id, key, "GET", path, now)
    assert ring.verify(good, "GET", path, now) is Verdict.OK
    assert ring.verify({}, "GET", path, now) is Verdict.ABSENT
    assert ring.verify(good, "POST", path, now) is Verdict.BAD
    assert ring.verify(good, "GET", "/trade-api/v2", now) is Verdict.BAD
    assert ring.verify(good, "GET", path, now + 600_000) is Verdict.BAD  # stale
    assert ring.verify({**good, KEY_HEADER: "other"}, "GET", path, now) is Verdict.BAD
    assert ring.verify({**good, SIG_HEADER: "!!"}, "GET", path, now) is Verdict.BAD
    assert (
        ring.verify({KEY_HEADER: creds.key_id, TS_HEADER: str(now)}, "GET", path, now)
        is Verdict.BAD
    )
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = signed_headers(creds.key_id, stranger, "GET", path, now)
    assert ring.verify(forged, "GET", path, now) is Verdict.BAD


# --- eras, key by key -------------------------------------------------------------------------

REF_TRANSITION_DELTA = {
    "market_ticker": "FED-23DEC-T3.00",
    "market_id": "9b0f",
    "price": 96,
    "price_dollars": "0.960",
    "delta": -54,
    "delta_fp": "-54.00",
    "side": "yes",
    "ts": "2022-11-22T20:44:01Z",
}
REF_CURRENT_DELTA = {
    "market_ticker": "FED-23DEC-T3.00",
    "market_id": "9b0f",
    "price_dollars": "0.9600",
    "delta_fp": "-54.00",
    "side": "yes",
    "ts": "2022-11-22T20:44:01Z",
    "ts_ms": 1669149841000,
}
REF_CURRENT_TICKER = {
    "market_id": "9b0f",
    "market_ticker": "FED-23DEC-T3.00",
    "price_dollars": "0.4800",
    "yes_bid_dollars": "0.4500",
    "yes_ask_dollars": "0.5300",
    "volume_fp": "33896.00",
    "open_interest_fp": "20422.00",
    "dollar_volume": 16948,
    "dollar_open_interest": 10211,
    "yes_bid_size_fp": "300.00",
    "yes_ask_size_fp": "150.00",
    "last_trade_size_fp": "25.00",
    "ts": 1669149841,
    "ts_ms": 1669149841000,
    "time": "2022-11-22T20:44:01Z",
}
REF_CURRENT_TRADE = {
    "trade_id": "d91bc706-ee49-470d-82d8-11418bda6fed",
    "market_ticker": "HIGHNY-22DEC23-B53.5",
    "yes_price_dollars": "0.3600",
    "no_price_dollars": "0.6400",
    "count_fp": "136.00",
    "taker_side": "no",
    "ts": 1669149841,
}
REF_INDEX = {
    "index_id": "BRTI",
    "received_at": 1710000000123,
    "data": '{"type":"value","id":"BRTI","time":1710000000123,"value":"68000.12"}',
    "avg_60s_data": {
        "value": "68000.12000000",
        "window_size": 3,
        "window_start_ts_ms": 1709999940123,
        "window_end_ts_exclusive": 1710000000123,
    },
    "last_60s_windowed_average_15min": {
        "value": "68000.23000000",
        "window_size": 14,
        "window_start_ts_ms": 1709999980000,
        "window_end_ts_exclusive": 1710000000123,
    },
}


def real_text(name: str) -> str:
    return real_fixture("kalshi", name).read_text()


def shape(obj: object) -> object:
    """Keys and value types, recursively (list shapes by their first element)."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shape(obj[0])] if obj else []
    return type(obj).__name__


def sample_market() -> tuple[Market, Book]:
    m = Market(
        "FED-23DEC-T3.00",
        "FED-23DEC",
        "KXBTCD",
        "9b0f",
        0,
        0,
        3600 * NS,
        "greater",
        8_674_999,
        None,
        "t",
        "y",
        "n",
        "r",
    )
    return m, Book(yes={800: 30_000, 2200: 33_300}, no={5400: 2000, 5600: 14_600})


def test_ws_snapshots_and_deltas_per_era_match_the_reference() -> None:
    m, book = sample_market()
    ev = BookEvent(m.ticker, m.market_id, "yes", 9600, -5400, 1_669_149_841 * NS)
    transition = Wire("transition")
    assert orjson.loads(transition.snapshot(m, book, False)) == {
        **TRANSITION_SNAPSHOT,
        "market_id": "9b0f",
    }
    assert orjson.loads(transition.delta(ev, False)) == {**REF_TRANSITION_DELTA}
    legacy_snap = orjson.loads(Wire("legacy").snapshot(m, book, False))
    assert set(legacy_snap) == set(TRANSITION_SNAPSHOT) - {"yes_dollars_fp", "no_dollars_fp"}
    legacy_delta = orjson.loads(Wire("legacy").delta(ev, False))
    assert shape(legacy_delta) == shape(
        {k: v for k, v in REF_TRANSITION_DELTA.items() if k != "delta_fp"}
    )
    current = Wire("current")
    assert orjson.loads(current.snapshot(m, book, False)) == CURRENT_SNAPSHOT
    assert orjson.loads(current.delta(ev, False)) == REF_CURRENT_DELTA
    # An empty side is absent (not []) on the WS.
    only_yes = orjson.loads(current.snapshot(m, Book(yes={800: 100}), False))
    assert "no_dollars_fp" not in only_yes
    assert "yes_dollars_fp" in only_yes
    # use_yes_price: NO bids on the YES price scale.
    yes_scale = orjson.loads(current.snapshot(m, book, True))
    assert yes_scale["no_dollars_fp"] == [["0.4400", "146.00"], ["0.4600", "20.00"]]


def test_current_frames_match_the_real_captures_key_for_key() -> None:
    lines = (
        real_fixture("kalshi", "cockpit_ws_orderbook_delta_stream_2026-08-07.jsonl")
        .read_text()
        .splitlines()
    )
    frames = [orjson.loads(line)["frame"] for line in lines[1:]]
    real_snap = next(f for f in frames if f["type"] == "orderbook_snapshot")
    real_delta = next(f for f in frames if f["type"] == "orderbook_delta")
    m, book = sample_market()
    current = Wire("current")
    assert shape(orjson.loads(current.snapshot(m, book, False))) == shape(real_snap["msg"])
    ev = BookEvent(m.ticker, m.market_id, "no", 3700, -313, 1_786_085_193_310_000_000)
    mine = orjson.loads(current.delta(ev, False))
    assert shape(mine) == shape(real_delta["msg"])
    assert list(mine) == list(real_delta["msg"])  # Kalshi's key order too
    assert mine["delta_fp"] == "-3.13"
    assert mine["ts"] == "2026-08-07T06:46:33.31Z"


def test_ticker_trade_index_payloads_per_era() -> None:
    m, _book = sample_market()
    m.volume_e2, m.open_interest_e2, m.last_price_e4, m.last_trade_e2 = 300, 300, 4800, 100
    top = (4500, 30_000, 5300, 15_000)
    current = orjson.loads(Wire("current").ticker(m, top, 1_669_149_841 * NS))
    assert shape(current) == shape(REF_CURRENT_TICKER)
    real = orjson.loads(real_text("ssmd_ws_ticker_2026-02-12.jsonl").splitlines()[0])["msg"]
    transition = orjson.loads(Wire("transition").ticker(m, top, 1_669_149_841 * NS))
    assert shape(transition) == shape(real)
    legacy = orjson.loads(Wire("legacy").ticker(m, top, 1_669_149_841 * NS))
    assert {"price", "yes_bid", "yes_ask", "volume", "open_interest", "ts"} <= set(legacy)
    assert not any(k.endswith("_fp") for k in legacy)

    trade = TradeEvent(
        m.ticker, REF_CURRENT_TRADE["trade_id"], 3600, 13_600, "no", 1_669_149_841 * NS
    )
    cur_trade = orjson.loads(Wire("current").trade(trade))
    assert {k: cur_trade[k] for k in REF_CURRENT_TRADE} == {
        **REF_CURRENT_TRADE,
        "market_ticker": m.ticker,
    }
    legacy_trade = orjson.loads(Wire("legacy").trade(trade))
    assert (legacy_trade["yes_price"], legacy_trade["no_price"], legacy_trade["count"]) == (
        36,
        64,
        136,
    )

    ex = quiet_exchange(IndexTape(lambda _t: 68_000.12), seed=1)
    events = ex.step(ns("2026-07-24T00:44:30"))
    idx = next(e for e in events if isinstance(e, IndexEvent))
    msg = orjson.loads(Wire.index(idx))
    assert shape(msg) == shape(REF_INDEX)
    assert msg["avg_60s_data"]["value"] == "68000.12000000"
    assert msg["last_60s_windowed_average_15min"]["window_size"] == 31  # 00:44:00 … 00:44:30
    assert orjson.loads(msg["data"])["value"] == "68000.12"


def test_rest_shapes_per_era() -> None:
    m, book = sample_market()
    top = (2200, 33_300, 4400, 14_600)
    real = orjson.loads(real_text("cockpit_rest_market_and_orderbook_2026-08-09.json"))
    cur = Wire("current").market(m, top)
    missing = set(real["single"]["market"]) - set(cur) - {"early_close_condition", "custom_strike"}
    assert not missing
    assert not any(k in cur for k in ("yes_bid", "volume", "tick_size", "category"))
    assert shape(Wire("current").orderbook(book, 0)) == shape(real["orderbook"])
    assert Wire("current").orderbook(Book(), 0) == {
        "orderbook_fp": {"yes_dollars": [], "no_dollars": []}
    }
    assert Wire("current").orderbook(book, 1)["orderbook_fp"]["yes_dollars"] == [
        ["0.2200", "333.00"]
    ]
    legacy = Wire("legacy").orderbook(Book(yes={100: 20_000}), 0)
    assert legacy == {
        "orderbook": {
            "yes": [[1, 200]],
            "no": None,
            "yes_dollars": [["0.010", 200]],
            "no_dollars": None,
        }
    }
    transition = Wire("transition").orderbook(book, 0)
    assert set(transition) == {"orderbook", "orderbook_fp"}
    legacy_market = Wire("legacy").market(m, top)
    assert (
        legacy_market["yes_bid"],
        legacy_market["yes_ask"],
        legacy_market["response_price_units"],
    ) == (
        22,
        44,
        "usd_cent",
    )
    m.status = "finalized"
    assert Wire("legacy").market(m, top)["status"] == "settled"
    assert Wire("current").market(m, top)["status"] == "finalized"
    series = Wire.series("KXBTC15M")
    assert series is not None
    assert (
        series["series"]["fee_type"],
        series["series"]["fee_multiplier"],
    ) == (
        "quadratic",
        1.0,
    )
    real_series = orjson.loads(real_text("cockpit_rest_series_2026-08-20.json"))
    real_keys = set(real_series["payloads"]["KXMLBGAME"]["series"])
    assert real_keys - set(series["series"]) <= {"exchange_index", "last_updated_ts"}
