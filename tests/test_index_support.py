"""Proxies, settlement averages, replica − official tracking and the index rows of a tick."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from arbkit.core.book import BookView
from arbkit.core.events import IndexRow, schema
from arbkit.index.params import PARAMS
from arbkit.index.proxy import MEDIAN_MID, VW_MID, median_mid, vw_mid
from arbkit.index.report import e8_text, index_rows, result_dict
from arbkit.index.rounding import round_e8
from arbkit.index.rti import RtiCalculator
from arbkit.index.settlement import SECOND_NS, one_second_values, settlement_average
from arbkit.index.tracking import OfficialTracker, differences

E8 = 10**8
NOW = 1_800_000_000 * SECOND_NS


def top(venue: str, bid: str, bid_size: str, ask: str, ask_size: str, **kw: object) -> BookView:
    def e8(x: str) -> int:
        return int(Decimal(x) * E8)

    return BookView(
        venue,
        ((e8(bid), e8(bid_size)),),
        ((e8(ask), e8(ask_size)),),
        int(kw.get("updated_ns", NOW)),  # type: ignore[call-overload]
        bool(kw.get("valid", True)),
    )


# -- rounding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num", "den", "decimals", "expected"),
    [
        (100000_00500000, 1, 2, 100000_01000000),  # exact half -> up
        (100000_00499999, 1, 2, 100000_00000000),
        (-100000_00500000, 1, 2, -100000_01000000),  # halves away from zero
        (1, 3, 2, 0),
        (200000_01000001, 2, 2, 100000_01000000),
        (123_45675000, 1, 4, 123_45680000),
    ],
)
def test_round_e8(num: int, den: int, decimals: int, expected: int) -> None:
    assert round_e8(num, den, decimals) == expected


# -- proxies -------------------------------------------------------------------------------------


def test_median_mid_and_vw_mid_are_exact_and_defined_as_documented() -> None:
    books = [
        top("a", "100", "1", "102", "3"),  # mid 101, weight 4
        top("b", "99", "2", "100", "2"),  # mid 99.5, weight 4
        top("c", "101", "0.5", "101.02", "1.5"),  # mid 101.01, weight 2
        top("d", "120", "9", "100", "9"),  # crossed: excluded from both
    ]
    m = median_mid(books, NOW)
    assert m.method == MEDIAN_MID
    assert m.value_e8 == 101 * E8
    assert m.venues_used == ("a", "b", "c")
    assert m.excluded["d"].startswith("crossed")
    w = vw_mid(books, NOW)
    assert w.method == VW_MID
    # (101*4 + 99.5*4 + 101.01*2) / 10 = 100.402
    assert w.value_e8 == round_e8(int(Decimal("100.402") * E8), 1, 2) == 100_40000000
    assert vw_mid(books, NOW, venues={"a", "b"}).value_e8 == 100_25000000
    even = median_mid(books[:2], NOW)
    assert even.value_e8 == 100_25000000  # (101 + 99.5) / 2


def test_proxies_drop_stale_and_invalid_books_and_say_so() -> None:
    books = [
        top("old", "1", "1", "2", "1", updated_ns=NOW - 11 * SECOND_NS),
        top("bad", "1", "1", "2", "1", valid=False),
    ]
    for proxy in (median_mid(books, NOW), vw_mid(books, NOW)):
        assert proxy.value_e8 is None
        assert set(proxy.excluded) == {"old", "bad"}


# -- settlement ----------------------------------------------------------------------------------


def test_settlement_average_of_60_seconds_before_the_time_rounded() -> None:
    at = NOW
    # Ticks every 200 ms over 70 s; the last tick of each second counts for that second.
    ticks = []
    for i in range(-70 * 5, 5):
        t = at + i * 200_000_000
        second = -(-t // SECOND_NS)
        ticks.append((t, (100000 + (second - at // SECOND_NS)) * E8 + (i % 5)))
    values = one_second_values(ticks)
    assert values[at] == 100000 * E8  # the tick exactly at the second is that second's value
    s = settlement_average(values, at)
    assert s.count == 60
    assert s.missing == ()
    # seconds at-60 .. at-1 carry 99940 .. 99999 (+0): mean 99969.5
    assert s.value == Decimal("99969.50")
    assert s.value_e8 == 99969_50000000


def test_settlement_tie_rounds_half_up_and_missing_seconds_are_skipped_and_listed() -> None:
    at = NOW
    values = {
        at - k * SECOND_NS: (100000 * E8 if k % 2 else 100000 * E8 + 1_000_000)
        for k in range(1, 61)
    }
    # 30 values at 100000.00 and 30 at 100000.01: mean 100000.005 -> 100000.01
    assert settlement_average(values, at).value == Decimal("100000.01")
    assert settlement_average(values, at, decimals=4).value == Decimal("100000.0050")
    del values[at - 5 * SECOND_NS], values[at - 7 * SECOND_NS]
    s = settlement_average(values, at)
    assert s.count == 58
    assert s.missing == (at - 7 * SECOND_NS, at - 5 * SECOND_NS)
    assert settlement_average({}, at).value_e8 is None
    with pytest.raises(ValueError, match="not a whole second"):
        settlement_average(values, at + 1)


# -- replica minus official ----------------------------------------------------------------------


def test_differences_pair_each_replica_tick_with_the_latest_fresh_official() -> None:
    s = SECOND_NS
    official = [(NOW, 100000 * E8), (NOW + s, 100010 * E8), (NOW + 9 * s, 100020 * E8)]
    replica = [
        (NOW - s, 99999 * E8),  # before any official tick: no difference
        (NOW, 100001 * E8),  # same instant: official counts as before
        (NOW + s + s // 2, 100005 * E8),
        (NOW + 5 * s, 100006 * E8),  # official 4 s old: too old
        (NOW + 9 * s, None),  # no replica value
        (NOW + 10 * s, 100019 * E8),
    ]
    got = [(d.time_ns, d.official_e8, d.diff_e8) for d in differences(official, replica)]
    assert got == [
        (NOW, 100000 * E8, 1 * E8),
        (NOW + s + s // 2, 100010 * E8, -5 * E8),
        (NOW + 10 * s, 100020 * E8, -1 * E8),
    ]
    tracker = OfficialTracker()
    tracker.official(NOW + s, 2)
    tracker.official(NOW, 1)  # older: ignored
    assert tracker.latest(NOW + s) == 2


# -- index rows and the JSON form ----------------------------------------------------------------


def test_index_rows_of_a_tick() -> None:
    books = [top("a", "99990", "5", "100010", "5"), top("b", "1", "1", "2", "1", valid=False)]
    r = RtiCalculator().calculate(books, NOW)
    rows = index_rows(r, [median_mid(books, NOW), vw_mid(books, NOW)], official_e8=100001 * E8)
    assert [row.method for row in rows] == ["brti_replica", "median_mid", "vw_mid"]
    replica = rows[0]
    assert replica.value_e8 == 100000 * E8
    assert replica.utilized_depth == 5.0
    assert replica.cap == pytest.approx(5.0)
    assert replica.venues_used == "a"
    assert orjson.loads(replica.excluded)["b"].startswith("invalid")
    assert all(row.official_e8 == 100001 * E8 and row.recv_ns == NOW for row in rows)
    assert all(isinstance(row, IndexRow) for row in rows)
    assert schema(IndexRow).names[:3] == ["recv_ns", "method", "value_e8"]
    empty = index_rows(RtiCalculator(PARAMS["ETHUSD_RTI"]).calculate([], NOW))[0]
    assert empty.method == "ethusd_rti_replica"
    assert empty.value_e8 is None
    assert orjson.loads(empty.excluded) == {"": "no venue books given"}


def test_result_dict_is_json_ready_and_exact() -> None:
    books = [top("a", "99990", "5", "100010.01", "5")]
    r = RtiCalculator().calculate(books, NOW)
    d = orjson.loads(orjson.dumps(result_dict(r, [median_mid(books, NOW)])))
    assert d["value"] == "100000.01"  # 100000.005 rounded half up
    assert d["utilized_depth"] == "5"
    assert d["venues_used"] == ["a"]
    assert d["venues"][0]["mid"] == "100000.00500000"
    assert d["proxies"] == {"median_mid": "100000.01"}
    assert e8_text(123_45678900) == "123.456789"
    assert e8_text(5 * E8) == "5.00"
