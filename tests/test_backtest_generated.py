"""The backtest on a generated session whose market makers lag fair value (the world's knob)."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbkit.analysis.backtest import sweep
from arbkit.strategy.signals import SignalParams

generate = pytest.importorskip("arbkit.session.generate")

MAKER_LAG_S = 5.0


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """18 virtual minutes: the 00:00–00:15 KXBTC15M market opens, trades and settles."""
    config = generate.GenerateConfig(
        hours=0.3,
        seed=11,
        out=tmp_path_factory.mktemp("gen"),
        maker_lag_s=MAKER_LAG_S,
        series=["KXBTC15M"],
        venues=["coinbase", "kraken", "bitstamp"],
    )
    path: Path = generate.generate(config)
    return path


def test_net_edge_at_low_latency_shrinks_past_the_makers_lag(generated: Path) -> None:
    lags_ms = [0.0, 1_000.0, 2 * MAKER_LAG_S * 1_000, 6 * MAKER_LAG_S * 1_000]
    table = sweep(
        [generated],
        thresholds=[0.01],
        latencies_ms=lags_ms,
        params=SignalParams(maintenance=None),
        progress=False,
    )
    net = dict(zip(table["latency_ms"], table["net_pnl_dollars"], strict=True))
    assert net[0.0] > 0
    assert net[0.0] > net[lags_ms[2]] > net[lags_ms[3]]
    cost = dict(zip(table["latency_ms"], table["latency_cost_dollars"], strict=True))
    assert cost[0.0] == 0
    assert 0 < cost[lags_ms[2]] < cost[lags_ms[3]]
    assert table["contracts"].to_list()[0] > table["unsettled_contracts"].to_list()[0]
