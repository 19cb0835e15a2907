"""``arbkit check`` against the embedded world: a clean world passes every check; each fault
kind fails the checks it breaks (and only checks it can break)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import pytest

from arbkit.cli import main
from arbkit.core.events import RawFrame
from arbkit.session.check import FirstMessage, Rule, format_checks, judge, quantiles_ms

pytestmark = pytest.mark.timeout(120)

SECONDS = "5"


SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def run_check(
    capsys: pytest.CaptureFixture[str], *args: str, seconds: str = SECONDS
) -> tuple[int, dict[str, bool]]:
    code = main(["check", "--seconds", seconds, "--json", *args])
    body = json.loads(capsys.readouterr().out)
    for check in body["checks"]:
        assert set(check) >= {"name", "passed", "figure", "threshold"}
        assert SNAKE.fullmatch(check["name"]), check["name"]
        for key in ("figure", "threshold"):
            value = check[key]
            assert value is None or (type(value) is float and math.isfinite(value))
    assert body["passed"] == all(c["passed"] for c in body["checks"]) == (code == 0)
    return code, {c["name"]: c["passed"] for c in body["checks"]}


def test_a_clean_world_passes_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, passed = run_check(capsys, "--venues", "coinbase", "kraken", "paxos")
    assert [name for name, ok in passed.items() if not ok] == []
    assert code == 0
    assert {
        "kalshi_ws_latency_p99_ms",
        "kalshi_rest_latency_p99_ms",
        "spot_checksum_failures",
        "spot_divergences",
    } <= set(passed)
    for stream in ("kalshi_ws", "coinbase", "kraken", "paxos"):
        assert {f"{stream}_first_frame_s", f"{stream}_first_book_s"} <= set(passed)


def test_the_table_says_pass_or_fail_per_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--seconds", "3", "--venues", "none"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["check", "figure", "threshold", "detail"]
    assert "PASS  kalshi_ws_connected" in out
    assert "subscribe sent -> first book snapshot" in out
    assert out.rstrip().endswith("checks passed")


def test_the_table_names_the_checks_that_failed() -> None:
    checks = [
        judge("a_s", 0.5, Rule.AT_MOST, 1.0, "fine"),
        judge("b_s", None, Rule.AT_MOST, 1.0, "no samples"),
    ]
    table = format_checks(checks).splitlines()
    assert table[1].split()[:4] == ["PASS", "a_s", "0.5", "<="]
    assert table[2].split()[:3] == ["FAIL", "b_s", "-"]
    assert table[-1] == "1/2 checks passed; failed: b_s"


def raw(kind: str, t_s: float) -> RawFrame:
    return RawFrame(int(t_s * 1e9), 1, 1, kind, "")


def test_time_to_first_message_counts_from_the_connection_that_delivered_it() -> None:
    first = FirstMessage()
    for frame in (raw("connect", 1), raw("disconnect", 2), raw("connect", 10), raw("send", 10.5)):
        first.raw(frame)
    first.raw(raw("frame", 10.75))
    first.book(int(11 * 1e9))
    first.raw(raw("connect", 20))  # later connections change nothing
    first.raw(raw("frame", 21))
    first.book(int(22 * 1e9))
    assert (first.frame_s, first.book_s, first.book_from_connect) == (0.75, 0.5, False)


def test_without_a_subscribe_message_the_first_book_counts_from_the_connect() -> None:
    first = FirstMessage()
    first.raw(raw("connect", 1))
    first.raw(raw("frame", 1.25))
    first.book(int(1.25 * 1e9))
    first.raw(raw("send", 3))  # a later REST reconciliation
    assert (first.frame_s, first.book_s, first.book_from_connect) == (0.25, 0.25, True)


KALSHI_ONLY = ("none",)
SPOT = ("coinbase", "kraken")
WITH_PAXOS = (*SPOT, "paxos")


@dataclass(frozen=True)
class Breaks:
    """One fault of a run: the checks it must fail, and the knock-on checks it may fail."""

    fault: str
    must: frozenset[str]
    may: frozenset[str] = frozenset()

    @property
    def family(self) -> str:
        return family(self.fault)


def family(name: str) -> str:
    """Which side a fault or check is on: Kalshi's (WS and REST), or the spot venues' and the
    replica's. A run injects at most one fault per side (two on the spot side only where their
    checks differ), so each check that fails is traced to the fault of its side."""
    return "kalshi" if name.startswith("kalshi") else "spot"


def breaks(fault: str, must: set[str], may: set[str] | None = None) -> Breaks:
    return Breaks(fault, frozenset(must), frozenset(may or ()))


REPLICA = {"spot_venues_live", "replica_available"}
KALSHI_BOOKS = {"kalshi_ws_resyncs", "kalshi_ws_books_valid"}
NO_KALSHI_BOOK = {"kalshi_ws_first_book_s", "kalshi_ws_books_valid", "kalshi_ws_latency_p99_ms"}

# Each run injects one Kalshi fault and one spot fault at once (they touch disjoint checks),
# so a world run serves two fault kinds.
RUNS: list[tuple[str, tuple[str, ...], list[Breaks]]] = [
    (
        SECONDS,
        SPOT,
        [
            breaks("kalshi.gap=0.2", {"kalshi_ws_gaps"}, KALSHI_BOOKS),
            breaks(
                "coinbase.gap=0.1",
                {"spot_gaps"},
                {"spot_resyncs", "spot_crossed", "spot_reconnects", *REPLICA},
            ),
        ],
    ),
    (
        SECONDS,
        SPOT,
        [
            breaks("kalshi.dup=0.3", {"kalshi_ws_duplicates"}),
            breaks("coinbase.dup=0.3", {"spot_duplicates"}),  # counted and dropped, no gap
        ],
    ),
    (
        SECONDS,
        SPOT,
        [
            # the replaced frame's seq is missing
            breaks(
                "kalshi.malformed=0.3", {"kalshi_ws_malformed"}, {"kalshi_ws_gaps", *KALSHI_BOOKS}
            ),
            breaks(
                "kraken.malformed=0.2",
                {"spot_malformed"},
                {"spot_resyncs", "spot_checksum_failures", "spot_gaps", "spot_crossed"}
                | {"spot_reconnects", *REPLICA},
            ),
        ],
    ),
    (
        SECONDS,
        SPOT,
        [
            breaks(
                "kalshi.drop=0.5s",
                {"kalshi_ws_reconnects"},
                {"kalshi_ws_gaps", "kalshi_ws_duplicates", *KALSHI_BOOKS}
                | {"kalshi_rest_latency_p99_ms"},  # dropped keep-alive connections are retried
            ),
            breaks(
                "coinbase.drop=0.5s",
                {"spot_reconnects"},
                {"spot_gaps", "spot_resyncs", *REPLICA},
            ),
        ],
    ),
    (
        SECONDS,
        SPOT,
        [
            # Every request takes 1.1 s more (the threshold is 1 s), the start's requests too;
            # the clock offset is estimated over slow REST (the WS latency may fail too).
            breaks("kalshi.slow=1.1", {"kalshi_rest_latency_p99_ms"}, {"kalshi_ws_latency_p99_ms"}),
            breaks("coinbase.crossed=0.1", {"spot_crossed"}, REPLICA),
        ],
    ),
    (
        SECONDS,
        SPOT,
        [
            breaks("kalshi.http5xx=0.3", {"kalshi_rest_errors"}, {"kalshi_rest_latency_p99_ms"}),
            breaks(
                "kraken.corrupt=0.2",
                {"spot_checksum_failures"},
                {"spot_resyncs", "spot_gaps", "spot_reconnects", *REPLICA},
            ),
        ],
    ),
    (
        SECONDS,
        KALSHI_ONLY,
        [breaks("kalshi.http429=0.3", {"kalshi_rest_errors"}, {"kalshi_rest_latency_p99_ms"})],
    ),
    (
        SECONDS,
        KALSHI_ONLY,
        # Error 25 drops the book subscriptions: resubscribed, fresh snapshots.
        [breaks("kalshi.error25=500ms", {"kalshi_ws_errors", "kalshi_ws_resyncs"}, KALSHI_BOOKS)],
    ),
    (
        # Paxos's first REST reconciliation comes 2-3 s after its connect.
        "6",
        WITH_PAXOS,
        [
            # Subscribes refused with 17 (resubscribed), 18 or 27 (retried after a backoff): a
            # book may come late or, while its subscribe is refused, not at all.
            breaks(
                "kalshi.refuse=0.7", {"kalshi_ws_errors"}, {"kalshi_ws_resyncs", *NO_KALSHI_BOOK}
            ),
            breaks("paxos.http5xx=1", {"spot_errors"}),  # the reconciliation GET fails
        ],
    ),
    (
        # The books go stale 10.5 s into the silence (Kalshi: no frame or ping; a spot venue: no
        # update); a stall every 200-300 ms keeps the link silent from its first moments.
        "15",
        WITH_PAXOS,
        [
            breaks(
                "kalshi.stall=300ms,kalshi.stall_for=12s",
                {"kalshi_ws_stale", "kalshi_ws_books_valid"},
                {"kalshi_ws_first_frame_s", *NO_KALSHI_BOOK},  # a link silent from the start
            ),
            breaks(
                "coinbase.stall=200ms,coinbase.stall_for=30s",
                {"spot_stale"},
                {"spot_reconnects", *REPLICA},  # Coinbase's 15 s silence watchdog
            ),
            # Paxos has no sequence numbers: a lost update shows when its REST book differs
            # (reconciled 2 s after connecting, then every 5 s), and it reconnects.
            breaks(
                "paxos.gap=0.3",
                {"spot_divergences"},
                {"spot_resyncs", "spot_crossed", "spot_reconnects", *REPLICA},
            ),
        ],
    ),
]


@pytest.mark.parametrize(
    ("seconds", "venues", "faults"), RUNS, ids=[",".join(b.fault for b in r[2]) for r in RUNS]
)
def test_a_fault_fails_the_checks_it_breaks(
    seconds: str, venues: tuple[str, ...], faults: list[Breaks], capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ",".join(b.fault for b in faults)
    code, passed = run_check(capsys, "--faults", spec, "--venues", *venues, seconds=seconds)
    failed = {name for name, ok in passed.items() if not ok}
    assert code == 1
    for b in faults:
        assert b.must <= failed, b.fault
    for side in ("kalshi", "spot"):
        allowed = set().union(*(b.must | b.may for b in faults if b.family == side))
        assert {n for n in failed if family(n) == side} <= allowed, side


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
