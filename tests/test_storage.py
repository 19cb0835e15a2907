"""Crash-safe session storage: atomic parts, manifest, compaction, recovery, reader, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from arbkit.core.errors import StorageError
from arbkit.core.events import EventRow, KalshiBookRow, RawFrame
from arbkit.core.storage import (
    MANIFEST,
    SessionStatus,
    SessionWriter,
    UnclosedSessionWarning,
    compact_table,
    live_parts,
    open_session,
)


def book_row(i: int) -> KalshiBookRow:
    return KalshiBookRow(i, None, "KXBTC15M-26NOV241715-15", "yes", 4500 + i % 7, i, False, 1, i, 1)


def test_rows_round_trip_in_order_with_exact_values(tmp_path: Path) -> None:
    with SessionWriter.create(tmp_path, "s", max_rows=1000, flush_interval=3600) as w:
        for i in range(2500):
            w.write(book_row(i))
        w.write_raw("kalshi_ws", RawFrame(1, 1, 1, "frame", '{"type":"ok"}\n'))
        w.count("kalshi_ws", "frames")
        w.write(EventRow(5, "kalshi_ws", 1, "gap", "KX", "seq 3 -> 5", 4, 5))
    s = open_session(tmp_path / "s")
    assert s.tables == ["events", "kalshi_book", "raw/kalshi_ws"]
    df = s.frame("kalshi_book").collect()
    assert df["seq"].to_list() == list(range(2500))
    assert df["price_e4"][:8].to_list() == [4500, 4501, 4502, 4503, 4504, 4505, 4506, 4500]
    assert df["exch_ns"].null_count() == 2500
    assert s.raw("kalshi_ws").collect()["payload"].to_list() == ['{"type":"ok"}\n']
    ev = s.frame("events").collect().row(0, named=True)
    assert (ev["kind"], ev["expected"], ev["got"]) == ("gap", 4, 5)
    assert s.summary["rows"] == {"events": 1, "kalshi_book": 2500, "raw/kalshi_ws": 1}
    assert s.summary["counters"] == {"kalshi_ws": {"frames": 1}}
    assert s.manifest["closed"] is True
    # closing compacted the three size-bound parts into one covering file
    assert [p.name for p in s.files("kalshi_book")] == ["part-000001-000003.parquet"]


def test_parts_are_written_at_least_once_a_second(tmp_path: Path) -> None:
    w = SessionWriter.create(tmp_path, "s", flush_interval=0.2)
    w.write(book_row(0))
    assert not list((tmp_path / "s" / "kalshi_book").glob("part-*.parquet"))
    time.sleep(0.25)
    w.tick()
    parts = list((tmp_path / "s" / "kalshi_book").glob("part-*.parquet"))
    assert len(parts) == 1
    assert pq.read_table(parts[0]).num_rows == 1
    w.close()


def test_buffer_bound_forces_a_part(tmp_path: Path) -> None:
    w = SessionWriter.create(tmp_path, "s", max_rows=100, flush_interval=3600)
    for i in range(250):
        w.write(book_row(i))
    parts = sorted((tmp_path / "s" / "kalshi_book").glob("part-*.parquet"))
    assert [pq.read_table(p).num_rows for p in parts] == [100, 100]
    w.close()


def test_empty_table_reads_with_schema(tmp_path: Path) -> None:
    SessionWriter.create(tmp_path, "s").close()
    df = open_session(tmp_path / "s").frame("kalshi_rest_book").collect()
    assert df.height == 0
    assert df.schema["price_e4"] == pl.Int64


def test_crash_between_compaction_and_cleanup_keeps_rows_once(tmp_path: Path) -> None:
    w = SessionWriter.create(tmp_path, "s", max_rows=10)
    for i in range(35):
        w.write(book_row(i))
    w.flush()
    table_dir = tmp_path / "s" / "kalshi_book"
    before = {p.name: p.read_bytes() for p in table_dir.iterdir()}
    compact_table(table_dir)
    for name, data in before.items():  # as if killed before deleting the covered parts
        (table_dir / name).write_bytes(data)
    (table_dir / "part-000009.parquet.tmp").write_bytes(b"half a file")
    with pytest.warns(UnclosedSessionWarning, match="was not closed"):
        seqs = open_session(tmp_path / "s").frame("kalshi_book").collect()["seq"].to_list()
    assert seqs == list(range(35))
    w2 = SessionWriter.open(tmp_path / "s")
    assert sorted(p.name for p in table_dir.iterdir()) == ["part-000001-000004.parquet"]
    w2.write(book_row(35))
    w2.close()
    seqs = open_session(tmp_path / "s").frame("kalshi_book").collect()["seq"].to_list()
    assert seqs == list(range(36))


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from arbkit.core.events import KalshiBookRow
    from arbkit.core.storage import SessionWriter
    w = SessionWriter.create(Path(sys.argv[1]), "s")
    i = 0
    start = time.monotonic()
    print("ready", flush=True)
    while True:
        # 10k rows/s in 100-row bursts; recv_ns = wall clock when the row was written
        for _ in range(100):
            w.write(KalshiBookRow(time.time_ns(), None, "M", "yes", 5000, 100, False, 1, i, 1))
            i += 1
        time.sleep(max(0.0, start + i / 10_000 - time.monotonic()))
    """
)


def test_sigkill_loses_at_most_the_last_second(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(3.2)
    killed_ns = time.time_ns()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()

    session = tmp_path / "s"
    files = sorted(session.rglob("*.parquet"))
    assert files, "the child wrote no part at all"
    for f in files:
        pq.read_table(f)  # every part left behind opens
    with pytest.warns(UnclosedSessionWarning, match="data written up to then is readable"):
        seqs = open_session(session).frame("kalshi_book").collect()
    got = seqs["seq"].to_list()
    assert got == list(range(len(got))), "rows are missing or out of order"
    assert len(got) >= 20_000
    last_written_ns = seqs["recv_ns"].max()
    assert isinstance(last_written_ns, int)
    assert killed_ns - last_written_ns <= 1_300_000_000  # ~1 s flush interval + scheduling slack

    with SessionWriter.open(session) as w:
        for i in range(len(got), len(got) + 500):
            w.write(KalshiBookRow(time.time_ns(), None, "M", "yes", 5000, 100, False, 1, i, 1))
    reread = open_session(session)
    assert reread.frame("kalshi_book").collect()["seq"].to_list() == list(range(len(got) + 500))
    assert reread.manifest["resumed"] == 1
    assert not list(session.rglob("*.tmp"))


def test_output_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="not-a-dir") as info:
        SessionWriter.create(blocker / "recordings")
    assert str(info.value) == f"{blocker} is a file, not a directory: choose another --out"


def test_output_that_is_a_file_says_so(tmp_path: Path) -> None:
    out = tmp_path / "recording.parquet"
    out.write_text("x")
    with pytest.raises(StorageError) as info:
        SessionWriter.create(out)
    assert str(info.value) == f"{out} is a file, not a directory: choose another --out"
    assert out.read_text() == "x"


def test_opening_a_folder_of_sessions_names_one_of_them(tmp_path: Path) -> None:
    SessionWriter.create(tmp_path, "s").close()
    with pytest.raises(StorageError) as info:
        open_session(tmp_path)
    assert "it is a folder of sessions" in str(info.value)
    assert str(info.value).endswith(f"such as {tmp_path / 's'}")
    with pytest.raises(StorageError) as info:
        open_session(tmp_path / "nowhere")
    assert str(info.value).endswith("such as data/recordings/<session_id>")


def test_an_existing_session_is_still_refused(tmp_path: Path) -> None:
    SessionWriter.create(tmp_path, "s").close()
    with pytest.raises(StorageError, match="a session already exists"):
        SessionWriter.create(tmp_path, "s")


_FULL_DISK_CHILD = textwrap.dedent(
    """
    import resource, secrets, signal, sys
    from pathlib import Path
    from arbkit.core.errors import StorageError
    from arbkit.core.events import RawFrame
    from arbkit.core.storage import SessionWriter
    w = SessionWriter.create(Path(sys.argv[1]), "s", max_rows=50)
    for i in range(50):  # one complete part before the disk "fills up"
        w.write_raw("x", RawFrame(i, 1, i, "frame", "y" * 100))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    try:
        for i in range(50, 5000):
            w.write_raw("x", RawFrame(i, 1, i, "frame", secrets.token_hex(2500)))
    except StorageError as exc:
        print(exc)
        sys.exit(3)
    """
)


def test_full_disk_is_a_clear_error_and_keeps_earlier_parts(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes the kernel refuse writes past 20 kB (EFBIG): the same OSError path
    # as a full disk, without needing a real full filesystem.
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "cannot write" in done.stdout
    assert "raw/x/part-000002.parquet" in done.stdout
    assert "free some disk space" in done.stdout
    session = tmp_path / "s"
    live, _ = live_parts(session / "raw" / "x")
    assert [p.path.name for p in live] == ["part-000001.parquet"]
    assert pq.read_table(live[0].path).num_rows == 50
    assert not list(session.rglob("*.tmp"))
    assert (session / MANIFEST).is_file()


def test_open_missing_session_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no recording session"):
        open_session(tmp_path / "nope")
    with pytest.raises(StorageError, match="no recording session"):
        SessionWriter.open(tmp_path / "nope")


def test_an_unstorable_value_costs_only_its_own_row(tmp_path: Path) -> None:
    with SessionWriter.create(tmp_path, "s") as w:
        w.write(book_row(0))
        w.write(KalshiBookRow(1, None, "M", "yes", 10**30, 1, False, 1, 1, 1))  # beyond int64
        w.write(book_row(2))
    s = open_session(tmp_path / "s")
    assert s.frame("kalshi_book").collect()["seq"].to_list() == [0, 2]
    assert s.manifest["counters"]["kalshi_book"]["unstorable_rows"] == 1
    assert s.manifest["rows"]["kalshi_book"] == 2


def test_unknown_table_and_broken_manifest_are_clear_errors(tmp_path: Path) -> None:
    SessionWriter.create(tmp_path, "s").close()
    with pytest.raises(StorageError, match="no table 'kalshi_bok'"):
        open_session(tmp_path / "s").frame("kalshi_bok")
    (tmp_path / "s" / MANIFEST).write_text("{not json")
    with pytest.raises(StorageError, match="cannot read"):
        open_session(tmp_path / "s")


def test_a_clean_close_is_status_closed_and_opens_quietly(tmp_path: Path) -> None:
    w = SessionWriter.create(tmp_path, "s")
    assert (w.manifest["status"], w.manifest["closed"]) == ("recording", False)
    w.close()
    s = open_session(tmp_path / "s")  # warnings are errors here: a clean session must not warn
    assert (s.manifest["status"], s.manifest["error"], s.manifest["closed"]) == (
        "closed",
        None,
        True,
    )
    assert (s.summary["status"], s.summary["error"]) == ("closed", None)


@pytest.mark.parametrize(
    ("status", "error", "says"),
    [
        (SessionStatus.FAILED, "Kalshi WS: 401 for the whole run", "failed: Kalshi WS: 401"),
        (SessionStatus.INTERRUPTED, None, "was interrupted"),
    ],
)
def test_a_failed_or_interrupted_session_warns_and_says_so(
    tmp_path: Path, status: SessionStatus, error: str | None, says: str
) -> None:
    w = SessionWriter.create(tmp_path, "s", max_rows=1)
    w.write(book_row(0))
    w.write(book_row(1))
    w.close(status=status, error=error)
    with pytest.warns(UnclosedSessionWarning, match=says) as caught:
        s = open_session(tmp_path / "s")
    assert "data written up to then is readable" in str(caught[0].message)
    assert issubclass(caught[0].category, UserWarning)
    assert s.manifest["closed"] is False
    assert (s.summary["status"], s.summary["error"]) == (status.value, error)
    assert s.frame("kalshi_book").collect().height == 2  # the data is kept, and compacted
    assert [p.name for p in s.files("kalshi_book")] == ["part-000001-000002.parquet"]


def test_a_crashed_session_of_an_older_version_warns(tmp_path: Path) -> None:
    w = SessionWriter.create(tmp_path, "s")
    w.write(book_row(0))
    w.flush()  # then the process dies: no close
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    del manifest["status"], manifest["error"]  # as an older arbkit wrote it
    (tmp_path / "s" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.warns(UnclosedSessionWarning, match="was not closed"):
        s = open_session(tmp_path / "s")
    assert s.summary["status"] == "recording"
    manifest["closed"] = True  # an older clean close opens quietly
    (tmp_path / "s" / MANIFEST).write_text(json.dumps(manifest))
    assert open_session(tmp_path / "s").summary["status"] == "closed"


def test_the_writer_block_records_how_it_ended(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), SessionWriter.create(tmp_path, "boom"):
        raise RuntimeError("the venue went away")
    with pytest.raises(KeyboardInterrupt), SessionWriter.create(tmp_path, "ctrl-c"):
        raise KeyboardInterrupt
    with pytest.raises(SystemExit), SessionWriter.create(tmp_path, "sigterm"):
        raise SystemExit(143)  # what a SIGTERM handler raises
    boom = json.loads((tmp_path / "boom" / MANIFEST).read_text())
    assert (boom["status"], boom["error"]) == ("failed", "RuntimeError: the venue went away")
    for name in ("ctrl-c", "sigterm"):
        assert json.loads((tmp_path / name / MANIFEST).read_text())["status"] == "interrupted"


def test_reopening_a_failed_session_records_again(tmp_path: Path) -> None:
    SessionWriter.create(tmp_path, "s").close(status=SessionStatus.FAILED, error="x")
    w = SessionWriter.open(tmp_path / "s")
    assert (w.manifest["status"], w.manifest["error"]) == ("recording", None)
    w.close()
    assert open_session(tmp_path / "s").summary["status"] == "closed"


def test_unknown_raw_stream_is_a_clear_error_listing_the_streams(tmp_path: Path) -> None:
    with SessionWriter.create(tmp_path, "s") as w:
        w.write_raw("kalshi_ws", RawFrame(1, 1, 1, "frame", "{}"))
        w.write_raw("coinbase", RawFrame(1, 1, 1, "frame", "{}"))
    s = open_session(tmp_path / "s")
    with pytest.raises(StorageError) as info:
        s.raw("kalshi_wss")
    assert (
        str(info.value)
        == "no raw stream 'kalshi_wss' in this session; it has ['coinbase', 'kalshi_ws']"
    )
    with pytest.raises(StorageError, match="no raw stream 'nope'"):
        s.frame("raw/nope")
    assert s.raw("kalshi_ws").collect().height == 1
