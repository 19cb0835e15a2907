"""``arbkit check`` against the embedded world: a clean world passes every check; each fault
kind fails the checks it breaks (and only checks it can break)."""

from __future__ import annotations

import json

import pytest

from arbkit.cli import main
from arbkit.session.check import Rule, judge, quantiles_ms

pytestmark = pytest.mark.timeout(120)

SECONDS = "5"


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, bool]]:
    code = main(["check", "--seconds", SECONDS, "--json", *args])
    body = json.loads(capsys.readouterr().out)
    for check in body["checks"]:
        assert set(check) >= {"name", "passed", "figure", "threshold"}
    return code, {c["name"]: c["passed"] for c in body["checks"]}


def test_a_clean_world_passes_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, passed = run_check(capsys, "--venues", "coinbase", "kraken")
    assert [name for name, ok in passed.items() if not ok] == []
    assert code == 0
    assert {
        "kalshi_ws_latency_p99_ms",
        "kalshi_rest_latency_p99_ms",
        "spot_checksum_failures",
    } <= set(passed)


def test_the_table_says_pass_or_fail_per_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--seconds", SECONDS, "--venues", "none"]) == 0
    out = capsys.readouterr().out
    assert "PASS  kalshi_ws_connected" in out
    assert "checks passed" in out


KALSHI_ONLY = ("none",)
SPOT = ("coinbase", "kraken")


@pytest.mark.parametrize(
    ("faults", "venues", "must_fail", "may_fail"),
    [
        ("kalshi.gap=0.2", KALSHI_ONLY, {"kalshi_ws_gaps"}, {"kalshi_ws_books_valid"}),
        ("kalshi.dup=0.3", KALSHI_ONLY, {"kalshi_ws_duplicates"}, set()),
        (
            "kalshi.malformed=0.3",
            KALSHI_ONLY,
            {"kalshi_ws_malformed"},
            {"kalshi_ws_gaps", "kalshi_ws_books_valid"},  # the replaced frame's seq is missing
        ),
        (
            "kalshi.drop=0.5s",
            KALSHI_ONLY,
            {"kalshi_ws_reconnects"},
            {
                "kalshi_ws_gaps",
                "kalshi_ws_books_valid",
                "kalshi_ws_duplicates",
                "kalshi_rest_latency_p99_ms",  # dropped keep-alive connections are retried
            },
        ),
        (
            "kalshi.slow=1.5",
            KALSHI_ONLY,
            {"kalshi_rest_latency_p99_ms"},
            {"kalshi_ws_latency_p99_ms"},  # the clock offset is estimated over slow REST
        ),
        ("kalshi.http5xx=0.3", KALSHI_ONLY, {"kalshi_rest_errors"}, {"kalshi_rest_latency_p99_ms"}),
        ("kalshi.http429=0.3", KALSHI_ONLY, {"kalshi_rest_errors"}, {"kalshi_rest_latency_p99_ms"}),
        (
            "kraken.corrupt=0.2",
            SPOT,
            {"spot_checksum_failures"},
            {"spot_gaps", "spot_reconnects", "spot_venues_live", "replica_available"},
        ),
        ("coinbase.crossed=0.1", SPOT, {"spot_crossed"}, {"spot_venues_live", "replica_available"}),
        (
            "coinbase.gap=0.1",
            SPOT,
            {"spot_gaps"},
            {"spot_crossed", "spot_reconnects", "spot_venues_live", "replica_available"},
        ),
        (
            "coinbase.drop=0.5s",
            SPOT,
            {"spot_reconnects"},
            {"spot_gaps", "spot_venues_live", "replica_available"},
        ),
    ],
)
def test_a_fault_fails_the_checks_it_breaks(
    faults: str,
    venues: tuple[str, ...],
    must_fail: set[str],
    may_fail: set[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, passed = run_check(capsys, "--faults", faults, "--venues", *venues)
    failed = {name for name, ok in passed.items() if not ok}
    assert code == 1
    assert must_fail <= failed
    assert failed <= must_fail | may_fail


def test_a_start_that_cannot_reach_kalshi_is_one_failed_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBKIT_KALSHI_REST_URL", "http://127.0.0.1:9/trade-api/v2")
    code, passed = run_check(capsys, "--venues", "none")
    assert code == 1
    assert passed == {"kalshi_connect": False}


def test_bad_check_arguments_get_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--seconds", "-1"]) == 1
    assert main(["check", "--faults", "nosuch=1"]) == 1
    err = capsys.readouterr().err
    assert "--seconds must be positive" in err
    assert "bad fault" in err
    assert "Traceback" not in err


def test_quantiles_are_nearest_rank_and_a_missing_figure_fails() -> None:
    q = quantiles_ms([i * 1_000_000 for i in range(1, 101)])
    assert q == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0, "n": 100.0}
    assert not judge("x", None, Rule.AT_MOST, 1.0, "").passed
    assert judge("x", 1.0, Rule.AT_MOST, 1.0, "").passed
    assert not judge("x", 0.5, Rule.AT_LEAST, 1.0, "").passed
