"""Kalshi fees: the documented examples (kalshi-api.md §5), both rounding eras, the per-order
rounding accumulator, and fee terms parsed from real ``GET /series/{ticker}`` bodies."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest

from arbkit.core.clock import rfc3339_ns
from arbkit.strategy.fees import (
    CENTICENT_E4,
    MAKER_RATE,
    SUBPENNY_FROM_NS,
    FeeSchedule,
    FeeType,
    OrderFees,
    Role,
    Rounding,
    maker_fee_e4,
    taker_fee_e4,
)
from tests.fixtures import real_fixture

CENT, SUB = Rounding.CENT, Rounding.CENTICENT


def series_bodies() -> dict[str, dict[str, Any]]:
    path = real_fixture("kalshi", "cockpit_rest_series_2026-08-20.json")
    payloads: dict[str, dict[str, Any]] = json.loads(path.read_text())["payloads"]
    return payloads


@pytest.mark.parametrize(
    ("price_e4", "count", "rounding", "fee_e4"),
    [
        (5000, 100, CENT, 17500),  # §5: 100 @ $0.50 taker = $1.75
        (5000, 100, SUB, 17500),
        (5000, 1, CENT, 200),  # §5: 1 @ $0.50 = ceil(1.75¢) = $0.02
        (5000, 1, SUB, 175),  # the subpenny trade fee: $0.0175, up to $0.0001
        (5000, 10, CENT, 1800),  # §5: 10 @ $0.50 = $0.175 -> $0.18
        (5000, 10, SUB, 1750),
        (550, 1, SUB, 37),  # fee_rounding page: 1 @ $0.055 -> $0.00363825 -> $0.0037
        (550, 3, SUB, 110),  # 3 @ $0.055 -> $0.01091475 -> $0.0110
        (0, 10, CENT, 0),
        (10_000, 10, SUB, 0),
    ],
)
def test_taker_fee_documented_examples(
    price_e4: int, count: int, rounding: Rounding, fee_e4: int
) -> None:
    assert taker_fee_e4(price_e4, count, rounding=rounding) == fee_e4


@pytest.mark.parametrize(
    ("price_e4", "taker_1", "taker_100", "maker_1", "maker_100"),
    # Third-party fee table (agentbets.ai Kalshi fees guide), the cent-era rule, in cents.
    [
        (500, 1, 34, 1, 9),
        (1000, 1, 63, 1, 16),
        (2500, 2, 132, 1, 33),
        (5000, 2, 175, 1, 44),
        (7500, 2, 132, 1, 33),
        (9000, 1, 63, 1, 16),
        (9500, 1, 34, 1, 9),
    ],
)
def test_cent_era_fee_table(
    price_e4: int, taker_1: int, taker_100: int, maker_1: int, maker_100: int
) -> None:
    assert taker_fee_e4(price_e4, 1, rounding=CENT) == taker_1 * 100
    assert taker_fee_e4(price_e4, 100, rounding=CENT) == taker_100 * 100
    assert maker_fee_e4(price_e4, 1, rounding=CENT) == maker_1 * 100
    assert maker_fee_e4(price_e4, 100, rounding=CENT) == maker_100 * 100


def test_fractional_counts_and_multiplier_are_exact() -> None:
    # 10.00 contracts in e2 are 10 contracts; a half multiplier halves before rounding up.
    assert taker_fee_e4(5000, 1000, count_e2=True) == taker_fee_e4(5000, 10)
    assert taker_fee_e4(5000, 150, count_e2=True) == 263  # 1.5 x $0.0175 = $0.02625 -> up
    assert taker_fee_e4(5000, 10, multiplier=Fraction(1, 2)) == 875
    assert maker_fee_e4(5000, 1, multiplier=Fraction(1, 2)) == 22  # $0.0021875 -> $0.0022
    with pytest.raises(ValueError, match="outside"):
        taker_fee_e4(10_001, 1)


def test_one_fill_net_fee_at_cent_precision_is_the_documented_rounded_fee() -> None:
    # 10 @ $0.50, subpenny era, a non-direct member: trade fee $0.1750 + rounding $0.0050.
    fill = OrderFees().fill(5000, 10)
    assert (fill.trade_e4, fill.rounding_e4, fill.rebate_e4, fill.net_e4) == (1750, 50, 0, 1800)
    assert fill.balance_change_e4 == -51_800
    # A direct member ($0.0001 precision) pays the trade fee alone.
    assert OrderFees(precision_e4=CENTICENT_E4).fill(5000, 10).net_e4 == 1750


def test_accumulator_converges_to_the_single_fill_fee() -> None:
    # fee_rounding page: "buy 3 contracts at $0.055 (three 1-lot matches)".
    order = OrderFees()
    fills = [order.fill(550, 1) for _ in range(3)]
    assert [f.trade_e4 for f in fills] == [37, 37, 37]
    assert [f.rounding_e4 for f in fills] == [13, 13, 13]
    assert sum(f.balance_change_e4 for f in fills) == OrderFees().fill(550, 3).balance_change_e4
    # 100 one-lot fills at $0.50 cost what one 100-lot costs ($1.75), by whole-cent rebates.
    order = OrderFees()
    fills = [order.fill(5000, 1) for _ in range(100)]
    assert sum(f.net_e4 for f in fills) == 17500
    assert sum(f.rebate_e4 for f in fills) == 2500
    assert all(f.rebate_e4 in (0, 100) for f in fills)
    # The accumulator carries across taker and maker fills of one order; sells too.
    order = OrderFees()
    a = order.fill(5000, 10, rate=MAKER_RATE)
    b = order.fill(5000, 10, buy=False)
    assert (a.trade_e4, a.rounding_e4) == (438, 62)  # $0.04375 -> $0.0438; floor at the cent
    assert b.trade_e4 == 1750
    assert b.balance_change_e4 == 50_000 - 1750 - 50 + 100  # rounding 50, then a cent back


def test_series_metadata_from_the_real_capture() -> None:
    bodies = series_bodies()
    t = rfc3339_ns("2026-08-20T17:00:00Z")
    game = FeeSchedule.from_series(bodies["KXMLBGAME"])
    assert game.at(t).fee_type is FeeType.QUADRATIC_WITH_MAKER_FEES
    assert game.at(t).multiplier == Fraction(1, 2)
    assert game.fee_e4(5000, 10, t) == 875
    assert game.fee_e4(5000, 10, t, role=Role.MAKER) == 219  # 0.5 x $0.04375, up
    spread = FeeSchedule.from_series(bodies["KXMLBSPREAD"])
    assert spread.fee_e4(5000, 10, t, role=Role.MAKER) == 0  # quadratic: makers pay nothing
    assert spread.fee_e4(5000, 10, t) == 875
    doubles = FeeSchedule.from_series(bodies["KXATPDOUBLES"]["series"])  # the bare object
    assert doubles.at(t).multiplier == 1
    assert doubles.fee_e4(5000, 10, t) == 1750


def test_scheduled_fee_changes_apply_from_their_time() -> None:
    series = {"series": {"ticker": "KXBTC15M", "fee_type": "quadratic", "fee_multiplier": 1}}
    changes = {
        "series_fee_change_arr": [
            {
                "id": "c1",
                "series_ticker": "KXBTC15M",
                "fee_type": "quadratic_with_maker_fees",
                "fee_multiplier": 0.5,
                "scheduled_ts": "2026-09-01T00:00:00Z",
            },
            {  # the PascalCase shape of the docs' example, for another series: ignored
                "ID": "c2",
                "SeriesTicker": "KXBTCD",
                "FeeType": "flat",
                "FeeMultiplier": 2,
                "ScheduledTs": "2026-08-01T00:00:00Z",
            },
        ]
    }
    schedule = FeeSchedule.from_series(series, changes)
    change = rfc3339_ns("2026-09-01T00:00:00Z")
    assert schedule.fee_e4(5000, 10, change - 1) == 1750
    assert schedule.fee_e4(5000, 10, change - 1, role=Role.MAKER) == 0
    assert schedule.fee_e4(5000, 10, change) == 875
    assert schedule.fee_e4(5000, 10, change, role=Role.MAKER) == 219
    flat_change = {**changes["series_fee_change_arr"][1], "SeriesTicker": "KXBTC15M"}
    flat = FeeSchedule.from_series(series, {"series_fee_change_arr": [flat_change]})
    with pytest.raises(ValueError, match="flat"):
        flat.fee_e4(5000, 1, rfc3339_ns("2026-08-02T00:00:00Z"))


def test_rounding_rule_by_date_or_chosen() -> None:
    series = {"ticker": "KXBTC15M", "fee_type": "quadratic", "fee_multiplier": 1}
    by_date = FeeSchedule.from_series(series)
    assert by_date.fee_e4(5000, 1, SUBPENNY_FROM_NS - 1) == 200  # pre-2026: up to the cent
    assert by_date.fee_e4(5000, 1, SUBPENNY_FROM_NS) == 175
    cent = FeeSchedule.from_series(series, rounding=Rounding.CENT)
    assert cent.fee_e4(5000, 1, SUBPENNY_FROM_NS + 1) == 200
