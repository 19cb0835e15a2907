"""The backtest: one decision path, fills against the book on arrival, exact fees, no look-ahead."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from arbkit.analysis.backtest import backtest, sweep
from arbkit.analysis.decisions import load_inputs, prepare
from arbkit.analysis.fills import simulate, simulate_sequential
from arbkit.analysis.latency_models import Distribution, Latency, LatencyModel, draw_latencies
from arbkit.cli import main
from arbkit.core.events import KalshiBookRow
from arbkit.core.storage import Session, SessionWriter
from tests.backtest_support import (
    E8,
    MARKET,
    NS,
    PARAMS,
    STRIKE_E8,
    T0,
    index_row,
    lagged_session,
    market_row,
    series_meta,
)

LAG_S = 2


@pytest.fixture(scope="module")
def lagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lagged_session(tmp_path_factory.mktemp("bt"), lag_s=LAG_S)


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.int64)


def test_a_threshold_filters_exactly_the_strategys_own_decisions(lagged: Path) -> None:
    base = prepare(lagged, PARAMS).decisions
    assert base.n > 20
    for threshold in (0, 150, 400, 800):
        own = prepare(lagged, replace(PARAMS, threshold_e4=threshold)).decisions
        keep = base.edge_e4 >= threshold
        for name in ("recv_ns", "market", "side", "size", "price_e4", "edge_e4", "fee_e4"):
            np.testing.assert_array_equal(getattr(own, name), getattr(base, name)[keep], name)
    assert (base.edge_e4 < 800).any()
    assert (base.edge_e4 >= 800).any()


def test_positive_net_edge_at_low_latency_that_vanishes_past_the_makers_lag(lagged: Path) -> None:
    net = {
        ms: backtest([lagged], threshold=0.0, latency_ms=ms, params=PARAMS).row["net_pnl_dollars"]
        for ms in (0, 500, 1000, 3000, 5000)
    }
    assert min(net[0], net[500], net[1000]) > 0
    assert net[3000] == net[5000] == 0


def test_fees_follow_the_formula_and_the_series_metadata_fill_by_fill(tmp_path: Path) -> None:
    path = lagged_session(tmp_path, meta=series_meta("0.5"))
    result = backtest([path], threshold=0.0, latency_ms=0, params=PARAMS)
    fills = result.fills.filter(pl.col("filled") > 0)
    assert fills.height > 5
    rate = Fraction(1, 2) * Fraction(7, 100)
    for order in fills.iter_rows(named=True):
        expected = 0
        for level in order["levels"]:
            p = Fraction(level["price_e4"], 10_000)
            fee = rate * level["count"] * p * (1 - p)
            expected += -(-fee * 10_000 // 1)  # up to $0.0001 (2026: subpenny rounding)
        assert order["fee_e4"] == expected
        assert order["filled"] == sum(lv["count"] for lv in order["levels"])
        assert order["cost_e4"] == sum(lv["count"] * lv["price_e4"] for lv in order["levels"])
    assert result.row["fees_dollars"] * 10_000 == pytest.approx(int(fills["fee_e4"].sum()))


def test_no_look_ahead_changing_data_after_t_changes_nothing_before_t(lagged: Path) -> None:
    cut = T0 + 90 * NS
    tables = load_inputs(Session(lagged))
    after = pl.col("recv_ns") >= cut
    changed = dict(tables)
    changed["index"] = tables["index"].with_columns(
        pl.when(after).then(pl.col("value_e8") - 500 * E8).otherwise(pl.col("value_e8"))
    )
    changed["book"] = tables["book"].with_columns(
        pl.when(after).then(pl.col("qty_e2") * 3).otherwise(pl.col("qty_e2")),
        pl.when(after).then(pl.col("price_e4") // 200 * 100).otherwise(pl.col("price_e4")),
    )
    closed = market_row(cut, status="closed")
    changed["markets"] = pl.concat(
        [
            tables["markets"],
            pl.DataFrame([msgspec.structs.asdict(closed)]),
        ],
        how="vertical_relaxed",
    )
    a, b = prepare(lagged, PARAMS), prepare(lagged, PARAMS, tables=changed)
    before_a, before_b = a.decisions.recv_ns < cut, b.decisions.recv_ns < cut
    assert before_a.sum() > 10
    for name in ("recv_ns", "market", "side", "size", "price_e4", "edge_e4", "fair_e4"):
        np.testing.assert_array_equal(
            getattr(a.decisions, name)[before_a], getattr(b.decisions, name)[before_b]
        )
    assert not np.array_equal(a.decisions.recv_ns, b.decisions.recv_ns)
    oa = simulate(a, 0, _zeros(a.decisions.n), _zeros(a.decisions.n))
    ob = simulate(b, 0, _zeros(b.decisions.n), _zeros(b.decisions.n))
    early_a, early_b = oa.arrival_ns < cut, ob.arrival_ns < cut
    np.testing.assert_array_equal(oa.filled[early_a], ob.filled[early_b])
    np.testing.assert_array_equal(oa.cost_e4[early_a], ob.cost_e4[early_b])


def _standing_quote(out: Path) -> Path:
    """A YES ask ($0.60, 10 contracts) that stays while the index is far above the strike:
    every decision buys YES. The market opens at T0 + 30 s, when an index tick and a book
    change (a YES bid elsewhere) land together: two decisions at one time."""
    w = SessionWriter.create(out, "standing")
    w.update_meta(series_meta=series_meta())
    opens = T0 + 30 * NS
    w.write(market_row(T0 - 120 * NS, open_ns=opens))
    for k in range(-60, 90):
        w.write(index_row(T0 + k * NS, STRIKE_E8 + 2_000 * E8))
    w.write(KalshiBookRow(T0, T0, MARKET, "no", 4_000, 1_000, True, 1, 1, 1))
    w.write(KalshiBookRow(opens, opens, MARKET, "yes", 100, 10_000, False, 1, 2, 1))
    grow = T0 + 60 * NS
    w.write(KalshiBookRow(grow, grow, MARKET, "no", 4_000, 500, False, 1, 3, 1))
    w.close()
    return out / "standing"


def test_simultaneous_signals_cannot_fill_the_same_displayed_size(tmp_path: Path) -> None:
    prep = prepare(_standing_quote(tmp_path), PARAMS)
    d = prep.decisions
    snap, grow = T0 + 30 * NS, T0 + 60 * NS
    assert (d.recv_ns == snap).sum() == 2  # the book change and the index tick
    assert (d.size[d.recv_ns < grow] == 10).all()
    orders = simulate(prep, 0, _zeros(d.n), _zeros(d.n))
    before = orders.arrival_ns < grow
    assert before.sum() > 2
    assert orders.filled[before].sum() == 10  # 10 displayed: one order takes them, once
    assert orders.filled[orders.arrival_ns == snap].tolist() == [10, 0]
    # The level changed (10 -> 15 contracts): its consumption starts again.
    assert orders.filled[~before].sum() == 15


def test_no_fill_on_a_gapped_book(tmp_path: Path) -> None:
    path = lagged_session(tmp_path, gap_at_s=100)
    result = backtest([path], threshold=0.0, latency_ms=1500, params=PARAMS)
    fills = result.fills
    gap = T0 + 100 * NS
    late = fills.filter(pl.col("arrival_ns") > gap)
    assert late.height >= 1
    assert set(late["miss"]) == {"book_invalid"}
    assert late["filled"].sum() == 0
    assert fills.filter(pl.col("signal_ns") > gap + NS).height == 0


def test_settlement_says_which_source_settled_each_market(tmp_path: Path) -> None:
    by_index = backtest([lagged_session(tmp_path, "a")], threshold=0.0, params=PARAMS)
    assert by_index.settlements.row(0, named=True)["source"] == "replica_index"
    assert by_index.settlements.row(0, named=True)["yes_e4"] == 10_000
    by_result = backtest([lagged_session(tmp_path, "b", result="no")], threshold=0.0, params=PARAMS)
    assert by_result.settlements.row(0, named=True)["source"] == "result"
    assert by_result.row["net_pnl_dollars"] < 0 < by_index.row["net_pnl_dollars"]
    assert set(by_result.fills["settlement"]) == {"result"}
    short = lagged_session(tmp_path, "c", seconds_after_close=-30)
    assert backtest([short], params=PARAMS).settlements["source"].to_list() == ["unsettled"]


def test_results_add_up(lagged: Path) -> None:
    r = backtest([lagged], threshold=0.0, latency_ms=1000, params=PARAMS).row
    assert r["net_pnl_dollars"] == pytest.approx(r["gross_pnl_dollars"] - r["fees_dollars"])
    assert r["gross_pnl_dollars"] == pytest.approx(
        r["edge_pnl_dollars"] - r["latency_cost_dollars"]
    )
    eq = backtest([lagged], threshold=0.0, latency_ms=1000, params=PARAMS).equity
    assert eq["net_dollars"][-1] == pytest.approx(r["net_pnl_dollars"])
    assert eq["gross_dollars"][-1] == pytest.approx(r["gross_pnl_dollars"])


def test_latency_draws_are_seeded_scaled_and_offset() -> None:
    samples = np.array([10, 20, 30], dtype=np.int64) * 1_000_000
    lat = Latency(
        decision=LatencyModel(offset_ms=5),
        order=LatencyModel(Distribution.REST_RTT, offset_ms=1, scale=0.5),
    )
    dec, order = draw_latencies(lat, {Distribution.REST_RTT: samples}, 1000, (7,))
    assert (dec == 5_000_000).all()
    assert set(order.tolist()) == {6_000_000, 11_000_000, 16_000_000}
    again = draw_latencies(lat, {Distribution.REST_RTT: samples}, 1000, (7,))[1]
    np.testing.assert_array_equal(order, again)
    with pytest.raises(ValueError, match="no rest_rtt samples"):
        draw_latencies(lat, {}, 3, (7,))


def test_cli_json_rows_and_figures(
    lagged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figs"
    code = main(
        [
            "backtest",
            str(lagged),
            "--thresholds",
            "0,0.05",
            "--latency-ms",
            "0,3000",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["threshold"], r["latency_ms"]) for r in rows] == [
        (0.0, 0.0),
        (0.0, 3000.0),
        (0.05, 0.0),
        (0.05, 3000.0),
    ]
    keys = {
        "threshold",
        "latency_ms",
        "trades",
        "contracts",
        "gross_pnl_dollars",
        "fees_dollars",
        "net_pnl_dollars",
        "hit_rate",
        "max_drawdown_dollars",
    }
    assert keys <= set(rows[0])
    assert rows[0]["net_pnl_dollars"] > 0 == rows[1]["trades"]
    assert {p.name for p in out.iterdir()} >= {"net_vs_threshold.png", "equity.png"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["/nonexistent/session"], "no recording session"),
        (["{s}", "--thresholds", "0,x"], "--thresholds takes comma-separated numbers"),
        (["{s}", "--latency-ms", "-1"], "zero or more milliseconds"),
    ],
)
def test_cli_bad_input_is_one_line(
    lagged: Path, args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", *(a.format(s=lagged) for a in args)]) == 1
    err = capsys.readouterr().err.strip()
    assert says in err
    assert len(err.splitlines()) == 1


def test_sweep_is_the_same_table_on_a_local_pool_and_a_dask_cluster(
    lagged: Path, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    sessions = [lagged, lagged_session(tmp_path, "later", result="no")]
    thresholds, latencies = [0.0, 0.05, 0.05], [0.0, 1000.0, 3000.0]
    local = sweep(
        sessions, thresholds=thresholds, latencies_ms=latencies, params=PARAMS, progress=False
    )
    assert local.height == 6
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        executor = client.get_executor()
        on_dask = sweep(
            sessions,
            thresholds=thresholds,
            latencies_ms=latencies,
            params=PARAMS,
            executor=executor,
            chunks=3,
        )
        assert client.submit(lambda: 1).result() == 1  # the passed executor was left running
    assert_frame_equal(local, on_dask)
    one = backtest(sessions, threshold=0.05, latency_ms=1000, params=PARAMS).row
    assert local.filter((pl.col("threshold") == 0.05) & (pl.col("latency_ms") == 1000)).row(
        0, named=True
    ) == pytest.approx(one)


def test_the_vectorised_fills_are_the_sequential_ones(lagged: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for prep in (prepare(lagged, PARAMS), prepare(_standing_quote(tmp_path), PARAMS)):
        n = prep.decisions.n
        for threshold in (0, 300):
            for spread_ms in (0, 800, 3000):
                dec = rng.integers(0, spread_ms * 1_000_000 // 4 + 1, n)
                order = rng.integers(0, spread_ms * 1_000_000 + 1, n)
                fast = simulate(prep, threshold, dec, order)
                slow = simulate_sequential(prep, threshold, dec, order)
                for name in ("filled", "cost_e4", "fee_e4", "miss", "fill_order", "fill_count"):
                    np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
