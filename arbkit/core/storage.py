"""Crash-safe recording sessions in Parquet.

Layout (DESIGN 3.4)::

    <session>/session.json                    manifest: meta, start/end, counters, row counts
    <session>/<table>/part-000001.parquet     normalised rows, one part per flush
    <session>/raw/<stream>/part-000001.parquet

A `SessionWriter` buffers rows per table and writes each buffer as a new part file, first
under a temporary name and then renamed, so a part is either complete or absent. Buffers are
written at least once a second and whenever one reaches its size bound, so a killed process
loses at most the last second and memory stays bounded. Closing compacts each table's parts
into one file named for the parts it covers (``part-000001-000057.parquet``); the covered
parts are deleted afterwards, and a crash in between only leaves parts that readers and the
next writer know to ignore and remove. Reopening a session after a crash removes leftover
temporary files, keeps every complete part and carries on numbering.

The manifest's ``status`` (`SessionStatus`) says how the session ended: ``recording`` while a
writer has it open (or if that writer died), ``closed``, ``failed`` (with ``error``) or
``interrupted``. ``closed`` is true only for a clean close. Opening a session that did not close
cleanly warns (`UnclosedSessionWarning`): its data up to the end is readable all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
import os
import re
import secrets
import shutil
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from arbkit import __version__
from arbkit.core.clock import now_ns
from arbkit.core.errors import StorageError
from arbkit.core.events import RAW_PREFIX, RawFrame, Row, row_type_of, schema

MANIFEST = "session.json"
_PART = re.compile(r"^part-(\d{6,})(?:-(\d{6,}))?\.parquet$")
_TMP_SUFFIX = ".tmp"
_PART_COMPRESSION = "lz4"
"""Live parts favour write speed (they are written every second on the hot path)."""
_COMPACT_COMPRESSION = "zstd"
"""Compacted files favour size (written once, when a session closes)."""
_CHECK_EVERY = 64
"""Writes between two looks at the clock (keeps the per-row cost low; `tick` covers idle)."""


class SessionStatus(StrEnum):
    """How a session ended (manifest ``status``); ``recording`` until its writer closes it."""

    RECORDING = "recording"
    CLOSED = "closed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class UnclosedSessionWarning(UserWarning):
    """Opened a session that was not closed cleanly (crashed, failed, interrupted or live)."""


def session_status(manifest: Mapping[str, Any]) -> SessionStatus:
    """The status of a manifest; one written before ``status`` existed counts by ``closed``."""
    status = manifest.get("status")
    if status is None:
        return SessionStatus.CLOSED if manifest.get("closed") else SessionStatus.RECORDING
    try:
        return SessionStatus(status)
    except ValueError:
        msg = (
            f"unknown session status {status!r}; expected one of {[s.value for s in SessionStatus]}"
        )
        raise StorageError(msg) from None


def _unclosed_message(path: Path, status: SessionStatus, error: str | None) -> str:
    what = {
        SessionStatus.RECORDING: "was not closed (its recorder crashed, or is still writing)",
        SessionStatus.FAILED: f"failed: {error or 'no error recorded'}",
        SessionStatus.INTERRUPTED: "was interrupted (Ctrl+C or a signal)",
    }[status]
    return f"session {path} {what}; the data written up to then is readable"


def _storage_error(action: str, path: Path, exc: OSError) -> StorageError:
    reason = exc.strerror or str(exc)
    hint = (
        "free some disk space or record to another directory with --out"
        if exc.errno in (28, 27, 122)  # ENOSPC, EFBIG, EDQUOT
        else "check that the directory exists and is writable, or choose another with --out"
    )
    return StorageError(f"cannot {action} {path}: {reason}; {hint}")


@dataclass(frozen=True, order=True)
class Part:
    """One part file: it holds the rows of flushes ``first``..``last`` (equal if not compacted)."""

    first: int
    last: int
    path: Path

    @classmethod
    def parse(cls, path: Path) -> Part | None:
        m = _PART.match(path.name)
        if m is None:
            return None
        first = int(m.group(1))
        return cls(first, int(m.group(2) or first), path)


def live_parts(table_dir: Path) -> tuple[list[Part], list[Part]]:
    """The parts a reader should use, in order, and the superseded ones (already compacted)."""
    parts = sorted(p for f in table_dir.glob("part-*.parquet") if (p := Part.parse(f)))
    compacted = [p for p in parts if p.last > p.first]
    live: list[Part] = []
    dead: list[Part] = []
    for p in parts:
        covered = any(c is not p and c.first <= p.first and p.last <= c.last for c in compacted)
        (dead if covered else live).append(p)
    return live, dead


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir())


def table_dirs(session_path: Path) -> Iterator[tuple[str, Path]]:
    """(table name, directory) of every table of a session, raw streams as ``raw/<stream>``."""
    for d in _subdirs(session_path):
        if d.name == "raw":
            for r in _subdirs(d):
                yield RAW_PREFIX + r.name, r
        else:
            yield d.name, d


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        msg = f"cannot read {path} ({exc}); the part files beside it are still readable"
        raise StorageError(msg) from exc
    if not isinstance(data, dict):
        msg = f"{path} is not a session manifest (expected a JSON object)"
        raise StorageError(msg)
    return data


def _part_rows(path: Path) -> int:
    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, pa.ArrowException) as exc:
        msg = f"{path} is not a readable Parquet file ({exc}); move it aside to continue"
        raise StorageError(msg) from exc


def new_session_id() -> str:
    """A sortable, unique session id: UTC start time plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _storage_error("write", path, exc) from exc


_NUMPY_TYPES = {pa.int64(): np.int64, pa.bool_(): np.bool_, pa.float64(): np.float64}


def _column_builder(field: pa.Field) -> Callable[[list[Row]], pa.Array]:
    """How one column is gathered from a list of rows (numpy for non-null numbers: faster)."""
    get = operator.attrgetter(field.name)
    dtype = None if field.nullable else _NUMPY_TYPES.get(field.type)
    if dtype is not None:
        return lambda rows: pa.array(np.fromiter(map(get, rows), dtype=dtype, count=len(rows)))
    return lambda rows: pa.array(list(map(get, rows)), type=field.type)


def rows_table(row_type: type[Row], rows: Sequence[Row]) -> pa.Table:
    """Rows of one type as an Arrow table with the table's schema (as the writer stores them)."""
    table_schema = schema(row_type)
    rows = list(rows)
    return pa.Table.from_arrays(
        [_column_builder(f)(rows) for f in table_schema], schema=table_schema
    )


class _Buffer:
    """Rows of one table waiting for the next part file."""

    __slots__ = ("builders", "dictionary", "dir", "nbytes", "next_part", "rows", "schema")

    def __init__(self, table_dir: Path, row_type: type[Row], next_part: int) -> None:
        self.dir = table_dir
        self.schema = schema(row_type)
        self.builders = [_column_builder(field) for field in self.schema]
        self.dictionary = [f.name for f in self.schema if f.type == pa.string()]
        self.rows: list[Row] = []
        self.nbytes = 0
        self.next_part = next_part

    def to_arrow(self) -> tuple[pa.Table, int]:
        """The buffered rows as a table, and how many rows had to be left out.

        A value Arrow cannot hold (an int beyond 64 bits from a venue's absurd size, say)
        must not cost the rows around it: on failure the rows are converted one by one and
        only those that fail are left out (the raw frames they came from are kept anyway).
        """
        rows = self.rows
        try:
            return pa.Table.from_arrays([b(rows) for b in self.builders], schema=self.schema), 0
        except (OverflowError, ValueError, TypeError, pa.ArrowException):
            good = [r for r in rows if self._converts([r])]
            table = pa.Table.from_arrays([b(good) for b in self.builders], schema=self.schema)
            return table, len(rows) - len(good)

    def _converts(self, rows: list[Row]) -> bool:
        try:
            for build in self.builders:
                build(rows)
        except (OverflowError, ValueError, TypeError, pa.ArrowException):
            return False
        return True


class SessionWriter:
    """Writes one recording session; a `arbkit.core.sink.Sink`.

    Use `create` for a new session or `open` to continue one (after a crash, too). Call
    `tick` periodically (the recorder does, several times a second) so idle buffers are still
    written within ``flush_interval``; writes check the deadline themselves.
    """

    def __init__(
        self,
        path: Path,
        *,
        flush_interval: float = 1.0,
        max_rows: int = 100_000,
        max_raw_bytes: int = 32 * 1024 * 1024,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.flush_interval = flush_interval
        self.max_rows = max_rows
        self.max_raw_bytes = max_raw_bytes
        self._buffers: dict[str, _Buffer] = {}
        self._counters: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self._rows_written: defaultdict[str, int] = defaultdict(int)
        self._deadline = time.monotonic() + flush_interval
        self._countdown = _CHECK_EVERY
        self._closed = False
        self.manifest: dict[str, Any] = {}
        self._load_or_init(meta or {})

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, out_dir: Path | str, session_id: str | None = None, **kwargs: Any
    ) -> SessionWriter:
        """Start a new session in ``out_dir/<session_id>`` (the directory must not exist)."""
        out = Path(out_dir)
        path = out / (session_id or new_session_id())
        blocker = _file_in_the_way(out)
        if blocker is not None:
            msg = f"{blocker} is a file, not a directory: choose another --out"
            raise StorageError(msg)
        try:
            out.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError as exc:
            msg = f"a session already exists at {path}; use SessionWriter.open to continue it"
            raise StorageError(msg) from exc
        except OSError as exc:
            raise _storage_error("create the recording directory", path, exc) from exc
        return cls(path, **kwargs)

    @classmethod
    def open(cls, path: Path | str, **kwargs: Any) -> SessionWriter:
        """Continue an existing session, e.g. after a crash: complete parts are kept."""
        p = Path(path)
        if not (p / MANIFEST).is_file():
            msg = f"no recording session at {p} (missing {MANIFEST})"
            raise StorageError(msg)
        return cls(p, **kwargs)

    def _load_or_init(self, meta: Mapping[str, Any]) -> None:
        manifest_path = self.path / MANIFEST
        if manifest_path.is_file():
            self.manifest = _read_manifest(manifest_path)
            self.manifest["resumed"] = self.manifest.get("resumed", 0) + 1
            self.manifest.update(closed=False, status=SessionStatus.RECORDING.value, error=None)
            for stream, counts in self.manifest.get("counters", {}).items():
                self._counters[stream].update(counts)
            self._recover()
        else:
            self.manifest = {
                "session_id": self.path.name,
                "arbkit_version": __version__,
                "start_ns": now_ns(),
                "end_ns": None,
                "closed": False,
                "status": SessionStatus.RECORDING.value,
                "error": None,
            }
        self.manifest.update(meta)
        self._write_manifest()

    def _recover(self) -> None:
        """Remove temp files and superseded parts; recount rows from the live parts."""
        for tmp in self.path.rglob("*" + _TMP_SUFFIX):
            with contextlib.suppress(OSError):
                tmp.unlink()
        for table, table_dir in self._table_dirs():
            live, dead = live_parts(table_dir)
            for part in dead:
                with contextlib.suppress(OSError):
                    part.path.unlink()
            self._rows_written[table] = sum(_part_rows(p.path) for p in live)

    def _table_dirs(self) -> Iterator[tuple[str, Path]]:
        return table_dirs(self.path)

    def _buffer(self, table: str) -> _Buffer:
        buf = self._buffers.get(table)
        if buf is None:
            table_dir = self.path / table
            try:
                table_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _storage_error("create", table_dir, exc) from exc
            existing = [p.last for f in table_dir.glob("part-*.parquet") if (p := Part.parse(f))]
            buf = _Buffer(table_dir, row_type_of(table), max(existing, default=0) + 1)
            self._buffers[table] = buf
        return buf

    # -- the Sink interface ----------------------------------------------------------------

    def write(self, row: Row) -> None:
        """Buffer one normalised row (its table is its type's ``TABLE``)."""
        table = row.TABLE
        buf = self._buffers.get(table) or self._buffer(table)
        rows = buf.rows
        rows.append(row)
        if len(rows) >= self.max_rows:
            self._flush_buffer(table, buf)
        self._countdown -= 1
        if not self._countdown:
            self.tick()

    def write_raw(self, stream: str, frame: RawFrame) -> None:
        """Buffer one raw frame of ``stream``."""
        table = RAW_PREFIX + stream
        buf = self._buffers.get(table) or self._buffer(table)
        buf.rows.append(frame)
        buf.nbytes += len(frame.payload)
        if len(buf.rows) >= self.max_rows or buf.nbytes >= self.max_raw_bytes:
            self._flush_buffer(table, buf)
        self._countdown -= 1
        if not self._countdown:
            self.tick()

    def count(self, stream: str, counter: str, n: int = 1) -> None:
        """Add to a per-stream counter (frames, gaps, resyncs, reconnects, errors, dropped)."""
        self._counters[stream][counter] += n

    def declare_stream(self, stream: str, parser: Mapping[str, Any]) -> None:
        """Name the parser that reads raw ``stream`` (`arbkit.venues.parsers` identity):
        written to session.json as ``streams.<stream>.parser`` at once, so a replay of even a
        crashed session builds the same parser."""
        streams = self.manifest.setdefault("streams", {})
        streams.setdefault(stream, {})["parser"] = dict(parser)
        self._write_manifest()

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """A copy of the per-stream counters so far."""
        return {s: dict(c) for s, c in self._counters.items()}

    # -- flushing --------------------------------------------------------------------------

    def tick(self) -> None:
        """Flush if the flush interval has passed (call periodically when writes are rare)."""
        self._countdown = _CHECK_EVERY
        if time.monotonic() >= self._deadline:
            self.flush()

    def flush(self) -> None:
        """Write every non-empty buffer as a new part, then the manifest."""
        for table, buf in self._buffers.items():
            if buf.rows:
                self._flush_buffer(table, buf)
        self._deadline = time.monotonic() + self.flush_interval
        self._write_manifest()

    def _flush_buffer(self, table: str, buf: _Buffer) -> None:
        final = buf.dir / f"part-{buf.next_part:06d}.parquet"
        tmp = final.with_name(final.name + _TMP_SUFFIX)
        data, left_out = buf.to_arrow()
        if left_out:
            self._counters[table]["unstorable_rows"] += left_out
        try:
            pq.write_table(
                data, tmp, compression=_PART_COMPRESSION, use_dictionary=buf.dictionary or False
            )
            os.replace(tmp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _storage_error("write", final, exc) from exc
        self._rows_written[table] += data.num_rows
        buf.rows = []
        buf.nbytes = 0
        buf.next_part += 1

    def _write_manifest(self) -> None:
        self.manifest["counters"] = {s: dict(c) for s, c in sorted(self._counters.items())}
        self.manifest["rows"] = dict(sorted(self._rows_written.items()))
        _write_json_atomic(self.path / MANIFEST, self.manifest)

    # -- closing ---------------------------------------------------------------------------

    def update_meta(self, **meta: Any) -> None:
        """Add or replace manifest entries (written with the next flush)."""
        self.manifest.update(meta)

    def close(
        self,
        *,
        compact: bool = True,
        status: SessionStatus = SessionStatus.CLOSED,
        error: str | None = None,
    ) -> None:
        """Flush everything, compact each table's parts, and record how the session ended
        (``closed`` is true only for `SessionStatus.CLOSED`; ``error`` says why it failed)."""
        if self._closed:
            return
        status = SessionStatus(status)
        self.flush()
        if compact:
            for _, table_dir in self._table_dirs():
                compact_table(table_dir)
        self._closed = True
        self.manifest["end_ns"] = now_ns()
        self.manifest.update(
            closed=status is SessionStatus.CLOSED, status=status.value, error=error
        )
        self._write_manifest()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        """Closed on leaving the block: interrupted on Ctrl+C, a signal's exit or cancellation,
        failed (with the error) on any other exception."""
        if exc is None:
            self.close()
        elif isinstance(exc, KeyboardInterrupt | SystemExit | asyncio.CancelledError):
            self.close(status=SessionStatus.INTERRUPTED)
        else:
            self.close(status=SessionStatus.FAILED, error=f"{type(exc).__name__}: {exc}")


def _file_in_the_way(out: Path) -> Path | None:
    """``out`` or the first of its parents that exists, if that is not a directory."""
    for p in (out, *out.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def compact_table(table_dir: Path) -> Part | None:
    """Merge a table's live parts into one file covering their range; returns it (or None)."""
    live, _ = live_parts(table_dir)
    if len(live) < 2:
        return None
    first, last = live[0].first, live[-1].last
    final = table_dir / f"part-{first:06d}-{last:06d}.parquet"
    tmp = final.with_name(final.name + _TMP_SUFFIX)
    try:
        target_schema = pq.read_schema(live[0].path)
        with pq.ParquetWriter(tmp, target_schema, compression=_COMPACT_COMPRESSION) as writer:
            for part in live:
                writer.write_table(pq.read_table(part.path))
        os.replace(tmp, final)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _storage_error("compact", table_dir, exc) from exc
    for part in live:
        with contextlib.suppress(OSError):
            part.path.unlink()
    return Part(first, last, final)


def absorb_session(into: Path, other: Path) -> None:
    """Move closed session ``other``'s tables into closed session ``into`` and delete it.

    For a session written by several writers at once, each in its own directory (a writer
    owns its manifest, so two never share one): a table only ``other`` has is moved whole; a
    table both have (``events``) becomes one part, ordered by ``recv_ns`` (stable: ``into``'s
    rows first on ties). Counters and row counts add up; ``other``'s stream parsers join.
    """
    mine, theirs = _read_manifest(into / MANIFEST), _read_manifest(other / MANIFEST)
    for table, table_dir in list(table_dirs(other)):
        target = into / table
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(table_dir, target)
            continue
        old = [p.path for p in live_parts(target)[0]]
        parts = old + [p.path for p in live_parts(table_dir)[0]]
        merged = pa.concat_tables(pq.read_table(p) for p in parts)
        if "recv_ns" in merged.column_names:
            merged = merged.take(pc.sort_indices(merged, [("recv_ns", "ascending")]))
        final = target / "part-000001.parquet"
        tmp = target / ("merged" + _TMP_SUFFIX)
        pq.write_table(merged, tmp, compression=_COMPACT_COMPRESSION)
        for p in old:
            p.unlink()
        os.replace(tmp, final)
    counters = mine.setdefault("counters", {})
    for stream, counts in theirs.get("counters", {}).items():
        into_counts = counters.setdefault(stream, {})
        for name, n in counts.items():
            into_counts[name] = into_counts.get(name, 0) + n
    rows = mine.setdefault("rows", {})
    for table, n in theirs.get("rows", {}).items():
        rows[table] = rows.get(table, 0) + n
    mine["counters"] = dict(sorted(counters.items()))
    mine["rows"] = dict(sorted(rows.items()))
    mine["streams"] = dict(sorted({**mine.get("streams", {}), **theirs.get("streams", {})}.items()))
    _write_json_atomic(into / MANIFEST, mine)
    shutil.rmtree(other)


class Session:
    """A recorded session, read-only: manifest, table names and polars LazyFrames."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.is_file():
            inner = sorted(self.path.glob(f"*/{MANIFEST}")) if self.path.is_dir() else []
            example = inner[0].parent if inner else "data/recordings/<session_id>"
            holds = "; it is a folder of sessions" if inner else ""
            msg = (
                f"no recording session at {self.path} (missing {MANIFEST}{holds}); "
                f"pass a session directory such as {example}"
            )
            raise StorageError(msg)
        self.manifest: dict[str, Any] = _read_manifest(manifest)

    @property
    def id(self) -> str:
        return str(self.manifest.get("session_id", self.path.name))

    @property
    def tables(self) -> list[str]:
        """Tables with data: normalised names and ``raw/<stream>``."""
        return [name for name, d in table_dirs(self.path) if live_parts(d)[0]]

    def files(self, table: str) -> list[Path]:
        """The part files of a table, in write order (compacted or not)."""
        try:
            row_type_of(table)
        except KeyError:
            msg = f"no table {table!r} in arbkit recordings; this session has {self.tables}"
            raise StorageError(msg) from None
        table_dir = self.path / table
        if table.startswith(RAW_PREFIX) and not table_dir.is_dir():
            streams = [t.removeprefix(RAW_PREFIX) for t in self.tables if t.startswith(RAW_PREFIX)]
            stream = table.removeprefix(RAW_PREFIX)
            msg = f"no raw stream {stream!r} in this session; it has {streams}"
            raise StorageError(msg)
        return [p.path for p in live_parts(table_dir)[0]]

    def frame(self, table: str) -> pl.LazyFrame:
        """A table as a polars LazyFrame (empty, with its schema, if nothing was written)."""
        files = self.files(table)
        if not files:
            empty = pa.Table.from_pylist([], schema=schema(row_type_of(table)))
            return pl.from_arrow(empty).lazy()  # type: ignore[union-attr]
        return pl.scan_parquet(files)

    def raw(self, stream: str) -> pl.LazyFrame:
        """The raw frames of one stream."""
        return self.frame(RAW_PREFIX + stream)

    def stream_parser(self, stream: str) -> dict[str, Any] | None:
        """The parser identity recorded for raw ``stream`` (None for sessions that predate it)."""
        parser = self.manifest.get("streams", {}).get(stream, {}).get("parser")
        return dict(parser) if isinstance(parser, dict) else None

    @property
    def status(self) -> SessionStatus:
        """How the session ended (`SessionStatus.RECORDING` if it never closed)."""
        return session_status(self.manifest)

    @property
    def summary(self) -> dict[str, Any]:
        """Status (and error), start, end, duration, rows per table and counters per stream."""
        m = self.manifest
        start, end = m.get("start_ns"), m.get("end_ns")
        return {
            "session_id": self.id,
            "status": self.status.value,
            "error": m.get("error"),
            "closed": m.get("closed", False),
            "start": _iso(start),
            "end": _iso(end),
            "duration_s": (end - start) / 1e9 if start and end else None,
            "rows": m.get("rows", {}),
            "counters": m.get("counters", {}),
        }

    def __repr__(self) -> str:
        return f"Session({str(self.path)!r}, tables={self.tables})"


def _iso(t_ns: int | None) -> str | None:
    if t_ns is None:
        return None
    return datetime.fromtimestamp(t_ns / 1e9, UTC).isoformat(timespec="milliseconds")


def open_session(path: Path | str) -> Session:
    """Open a recorded session for reading; warns (`UnclosedSessionWarning`) if it did not
    close cleanly, since its data may end early (it stays readable up to where it stops)."""
    session = Session(path)
    status = session.status
    if status is not SessionStatus.CLOSED:
        message = _unclosed_message(session.path, status, session.manifest.get("error"))
        warnings.warn(message, UnclosedSessionWarning, stacklevel=2)
    return session
