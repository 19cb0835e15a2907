"""`arbkit.analysis.findings`: what the notebooks call (paths, pooling, words from figures)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from arbkit.analysis import findings
from arbkit.analysis.latency import LatencyReport, rest_vs_ws
from arbkit.core.errors import StorageError
from arbkit.replay.session import open_session

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(scope="module")
def report() -> LatencyReport:
    (path,) = findings.session_paths(SAMPLE)
    return rest_vs_ws(open_session(path))


def test_a_relative_path_is_found_from_notebooks_as_from_the_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT / "notebooks")
    assert findings.locate("data/sample") == ROOT / "data" / "sample"
    assert findings.session_paths("data/sample") == findings.session_paths(SAMPLE)
    assert findings.locate("data/recordings") == ROOT / "data" / "recordings"
    monkeypatch.chdir(ROOT)
    assert findings.locate("data/sample") == Path("data/sample")


def test_a_session_or_a_folder_of_sessions_and_a_clear_error_for_neither(tmp_path: Path) -> None:
    (one,) = findings.session_paths(SAMPLE)
    assert findings.session_paths(one) == [one]
    with pytest.raises(StorageError, match="no recording sessions"):
        findings.session_paths(tmp_path)


def test_pooling_recomputes_figures_from_every_sample(report: LatencyReport) -> None:
    pooled = findings.pool([report, report])
    assert pooled.ws_states.height == 2 * report.ws_states.height
    assert set(pooled.ws_delays["session"]) == {report.session}
    s, p = report.summary, pooled.summary
    assert p["rest_lag_s"]["n"] == 2 * s["rest_lag_s"]["n"]
    assert p["rest_lag_s"]["p50"] == pytest.approx(s["rest_lag_s"]["p50"])
    assert p["rest_missed_share"] == pytest.approx(s["rest_missed_share"])
    assert p["session"] == "2 sessions"
    assert findings.pool([report]) is report
    table = findings.by_session([report, report])
    assert table["session"].to_list() == [report.session, report.session, "2 sessions"]
    assert table["rest_polls"].to_list()[-1] == 2 * s["rest_polls"]


def test_conclusions_state_the_computed_figures(report: LatencyReport) -> None:
    s = report.summary
    text = findings.rest_vs_ws_findings(report)
    assert f"{s['rest_lag_s']['p50']:.3g} s" in text
    assert f"{s['rest_missed_share'] * 100:.1f} %" in text
    assert f"{s['ws_delay_ms']['p99']:.3g} ms" in text
    assert text._repr_markdown_() == str(text)
    delays = findings.delay_findings(report)
    fastest = report.ws_delay_table.drop_nulls("p50").sort("p50").row(0, named=True)
    assert f"{fastest['source']} {fastest['channel']}" in delays


def test_backtest_conclusions_follow_the_sweep_table() -> None:
    table = pl.DataFrame(
        {
            "threshold": [0.0, 0.02, 0.0, 0.02],
            "latency_ms": [0.0, 0.0, 1000.0, 1000.0],
            "trades": [10, 5, 8, 4],
            "contracts": [100, 50, 80, 40],
            "gross_pnl_dollars": [5.0, 4.0, 1.0, -1.0],
            "fees_dollars": [2.0, 1.0, 2.0, 1.0],
            "net_pnl_dollars": [3.0, 3.5, -1.0, -2.0],
            "hit_rate": [0.6, 0.7, 0.4, 0.3],
            "max_drawdown_dollars": [1.0, 1.0, 2.0, 3.0],
            "latency_cost_dollars": [0.0, 0.0, 4.0, 5.0],
            "edge_pnl_dollars": [5.0, 4.0, 5.0, 4.0],
        }
    )
    assert findings.best_setting(table)["threshold"] == 0.02
    text = findings.backtest_findings(table)
    assert "threshold $0.02 per contract at 0 ms: net $3.50 after $1.00 of fees" in text
    assert "25.0 % of that setting's gross" in text
    assert "-$1.00 at 1000 ms" in text
    assert "At 1000 ms, no threshold in the sweep makes money" in text
    assert "latency cost $4.00" in text
