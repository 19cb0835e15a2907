"""Column descriptions: in the row types, in every Parquet file written, and in the committed
data dictionary (generated from them, so it cannot drift)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pyarrow.parquet as pq
import pytest

from arbkit.core.dictionary import markdown
from arbkit.core.events import (
    ROW_TYPES,
    TABLES,
    KalshiBookRow,
    KalshiMarketRow,
    RawFrame,
    Row,
    _column_type,
    schema,
)
from arbkit.core.storage import SessionWriter, open_session

ROOT = Path(__file__).resolve().parents[1]
DICTIONARY = ROOT / "docs" / "data-dictionary.md"


def _description(row_type: type[Row], column: str) -> str:
    metadata: dict[bytes, bytes] = schema(row_type).field(column).metadata or {}
    return metadata.get(b"description", b"").decode()


@pytest.mark.parametrize("row_type", [*ROW_TYPES, RawFrame], ids=lambda t: t.__name__)
def test_every_column_has_a_description(row_type: type[Row]) -> None:
    missing = [f.name for f in schema(row_type) if not _description(row_type, f.name)]
    assert missing == [], f"{row_type.__name__}: give these columns a Meta(description=...)"


def test_the_committed_dictionary_is_the_generated_one() -> None:
    assert DICTIONARY.read_text() == markdown(), (
        "docs/data-dictionary.md is stale: "
        "python -m arbkit.core.dictionary > docs/data-dictionary.md"
    )


def test_the_module_prints_the_dictionary() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "arbkit.core.dictionary"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout == markdown()


def test_the_dictionary_lists_every_table_and_column() -> None:
    text = markdown()
    for row_type in (*ROW_TYPES, RawFrame):
        for f in schema(row_type):
            assert f"| `{f.name}` | {f.type} | {'yes' if f.nullable else 'no'} |" in text
    for table in TABLES:
        assert f"## Table `{table}`" in text
    assert "## Raw streams `raw/<stream>`" in text


def test_the_book_semantics_users_trip_over_are_stated() -> None:
    qty = _description(KalshiBookRow, "qty_e2")
    for words in ("ABSOLUTE resting size on snapshot rows", "SIGNED change on delta rows"):
        assert words in qty
    side = _description(KalshiBookRow, "side")
    for words in ("BID ladders", "YES ask = $1 - best NO bid", '"" on the single row', "empty"):
        assert words in side


def test_kalshi_markets_is_the_agreed_table() -> None:
    assert TABLES["kalshi_markets"] is KalshiMarketRow
    s = schema(KalshiMarketRow)
    assert [(f.name, str(f.type), f.nullable) for f in s] == [
        ("recv_ns", "int64", False),
        ("ticker", "string", False),
        ("event_ticker", "string", False),
        ("series", "string", False),
        ("title", "string", False),
        ("strike_type", "string", False),
        ("floor_strike_e8", "int64", True),
        ("cap_strike_e8", "int64", True),
        ("open_ns", "int64", True),
        ("close_ns", "int64", True),
        ("expiration_ns", "int64", True),
        ("status", "string", False),
        ("result", "string", False),
        ("expiration_value_e8", "int64", True),
    ]


def _market(recv_ns: int) -> KalshiMarketRow:
    return KalshiMarketRow(
        recv_ns=recv_ns,
        ticker="KXBTC15M-26NOV241715-15",
        event_ticker="KXBTC15M-26NOV241715",
        series="KXBTC15M",
        title="BTC price up in next 15 mins?",
        strike_type="greater_or_equal",
        floor_strike_e8=9_712_345_000_000,
        cap_strike_e8=None,
        open_ns=1_764_000_000_000_000_000,
        close_ns=1_764_000_900_000_000_000,
        expiration_ns=1_764_000_900_000_000_000,
        status="active",
        result="",
        expiration_value_e8=None,
    )


def test_written_parts_carry_the_descriptions(tmp_path: Path) -> None:
    with SessionWriter.create(tmp_path, "s", max_rows=1) as w:
        w.write(KalshiBookRow(1, None, "M", "yes", 4500, 100, True, 1, 1, 1))
        w.write(KalshiBookRow(2, None, "M", "yes", 4500, -100, False, 1, 2, 1))
        w.write(_market(3))
        w.write_raw("kalshi_ws", RawFrame(1, 1, 1, "frame", "{}"))
        w.flush()
        live = sorted((tmp_path / "s" / "kalshi_book").glob("part-*.parquet"))
        assert len(live) == 2  # before compaction: a live part
        part = pq.read_schema(live[0])
        assert part.field("qty_e2").metadata == {
            b"description": _description(KalshiBookRow, "qty_e2").encode()
        }
    s = open_session(tmp_path / "s")
    for table, row_type in (
        ("kalshi_book", KalshiBookRow),
        ("kalshi_markets", KalshiMarketRow),
        ("raw/kalshi_ws", RawFrame),
    ):
        (compacted,) = s.files(table)
        written = pq.read_schema(compacted)
        for f in schema(row_type):
            assert written.field(f.name).metadata == f.metadata, (table, f.name)
    markets = s.frame("kalshi_markets").collect()
    assert markets.row(0, named=True) == msgspec.structs.asdict(_market(3))


def test_descriptions_leave_msgspec_encoding_unchanged() -> None:
    row = _market(3)
    for encoder, decoder in (
        (msgspec.json.encode, msgspec.json.decode),
        (msgspec.msgpack.encode, msgspec.msgpack.decode),
    ):
        assert decoder(encoder(row), type=KalshiMarketRow) == row
    assert msgspec.json.decode(
        b'{"recv_ns":1,"conn_id":2,"frame_no":3,"kind":"frame","payload":"x"}', type=RawFrame
    ) == RawFrame(1, 2, 3, "frame", "x")
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(
            b'{"recv_ns":"1","conn_id":2,"frame_no":3,"kind":"","payload":""}', type=RawFrame
        )


def test_column_type_sees_through_annotated_and_optional() -> None:
    from typing import Annotated

    assert _column_type(Annotated[int | None, msgspec.Meta(description="d")]) == (int, True, "d")
    assert _column_type(Annotated[str, msgspec.Meta(description="e")]) == (str, False, "e")
    assert _column_type(bool | None) == (bool, True, "")
