"""``arbkit brti``: saved books -> table or JSON, and the errors a user can make."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from arbkit.cli import main
from arbkit.commands.brti import stream
from arbkit.core.book import BookView

E8 = 10**8

WORKED = {
    "bids": [["99990", "0.6"], ["99985", "1.4"], [99980, 2], ["99970", "3.0"],
             ["99950", 5.0], ["99500", "10"]],
    "asks": [["100600", "10"], ["100010", "0.5"], ["100015", "1.0"], ["100020", "2.5"],
             ["100040", "3.0"], ["100060", "5.0"]],
}  # fmt: skip


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "books.json"
    path.write_bytes(data if isinstance(data, bytes) else orjson.dumps(data))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["brti", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_result_of_the_worked_example_with_excluded_venues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        {
            "coinbase": WORKED,
            "kraken": {"bids": [["100000", "1", 3]], "asks": []},  # extra field ignored
            "gemini": {"bids": [["100020", "1"]], "asks": [["100010", "1"]]},
        },
    )
    code, out, err = run(capsys, "--books", str(path), "--json")
    assert (code, err) == (0, "")
    d = orjson.loads(out)
    assert d["index"] == "BRTI"
    assert d["value"] == "100002.00"
    assert d["value_e8"] == 100002 * 10**8
    assert d["utilized_depth"] == "12"
    assert float(d["cap"]) > 10
    assert d["venues_used"] == ["coinbase"]
    assert d["excluded"] == {
        "gemini": "crossed: best bid 100020 >= best ask 100010",
        "kraken": "one-sided: no asks",
    }
    by_venue = {v["venue"]: v for v in d["venues"]}
    assert by_venue["coinbase"]["mid"] == "100000.00000000"
    assert by_venue["coinbase"]["spread"] == "20.00000000"
    assert by_venue["coinbase"]["depth_used"] == pytest.approx(12.0)
    assert by_venue["coinbase"]["age_s"] == 0.0
    assert set(d["proxies"]) == {"median_mid", "vw_mid"}


def test_table_shows_value_depth_cap_and_each_venue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    path = write(tmp_path, {"coinbase": WORKED, "kraken": {"bids": [], "asks": []}})
    code, out, _ = run(capsys, "--books", str(path))
    assert code == 0
    assert "BRTI replica  100,002.00" in out
    assert "utilized depth 12" in out
    assert "order-size cap" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "100,000.00" in lines["coinbase"]
    assert "20.00" in lines["coinbase"]
    assert "12.0000" in lines["coinbase"]
    assert "used" in lines["coinbase"]
    assert "empty book" in lines["kraken"]


def test_no_valid_venue_prints_no_value_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"a": {"bids": [["1", "1"]], "asks": []}})
    code, out, _ = run(capsys, "--books", str(path), "--json")
    assert code == 0
    d = orjson.loads(out)
    assert d["value"] is None
    assert d["note"] == "no valid venue: all 1 venues excluded"
    assert d["excluded"] == {"a": "one-sided: no asks"}


def test_other_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, {"a": {"bids": [["3000", "30"]], "asks": [["3001", "30"]]}})
    code, out, _ = run(capsys, "--books", str(path), "--json", "--index", "ETHUSD_RTI")
    assert code == 0
    assert orjson.loads(out)["utilized_depth"] == "25"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read books file"),
        (b"{not json", "not valid JSON"),
        (b"{}", "no venues"),
        (b"[]", "no venues"),
        (b'{"a": {"bids": []}}', "venue 'a' must be an object with 'bids' and 'asks'"),
        (b'{"a": {"bids": {}, "asks": []}}', "venue 'a' bids must be a list"),
        (b'{"a": {"bids": [["1"]], "asks": []}}', "venue 'a' bids[0] must be a [price, size]"),
        (b'{"a": {"bids": [["x", "1"]], "asks": []}}', "bids[0] price: 'x' is not a decimal"),
        (b'{"a": {"bids": [], "asks": [["1", ""]]}}', "asks[0] size: '' is not a decimal"),
        (b'{"a": {"bids": [["1", "0.123456789"]], "asks": []}}', "at most 8 decimal places"),
        (b'{"a": {"bids": [["1", null]], "asks": []}}', "bids[0] size: None is not"),
        (b'{"a": {"bids": [["-1", "1"]], "asks": []}}', "price must be positive"),
        (b'{"a": {"bids": [["1", "1"], [1.0, 2]], "asks": []}}', "price 1.0 appears twice"),
    ],
)
def test_bad_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "missing.json" if content is None else write(tmp_path, content)
    code, out, err = run(capsys, "--books", str(path))
    assert code == 1
    assert out == ""
    assert err.startswith("arbkit brti: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--interval", "0"], "--interval must be positive"),
        (["--interval", "nan"], "--interval must be positive"),
        (["--stream", "--minutes", "-1"], "--minutes must be positive"),
        (["--books", "x.json", "--stream"], "drop --stream"),
    ],
)
def test_live_forms_and_option_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert message in err


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["brti", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--books", "--json", "--stream", "--interval", "--minutes", "--env", "--index"):
        assert option in out


def test_stream_prints_json_lines_and_carries_state_between_ticks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The offline loop: one calculator over ticks; an erroneous venue stays out at 3 %."""
    ticks = iter([110000, 103000, 102000])

    def source(t: int) -> list[BookView]:
        odd = next(ticks, 102000)
        return [
            BookView(v, ((m * E8 - 5 * E8, E8),), ((m * E8 + 5 * E8, E8),), t)
            for v, m in (("a", 100000), ("b", 100000), ("c", 100000), ("odd", odd))
        ]

    args = argparse.Namespace(stream=True, interval=0.02, minutes=0.1 / 60, json=True, index="BRTI")
    assert stream(source, args) == 0
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) >= 3
    assert "odd" in lines[0]["excluded"]
    assert "odd" in lines[1]["excluded"]  # 3 %: inside PED but not back within 2.5 %
    assert lines[2]["venues_used"] == ["a", "b", "c", "odd"]
