"""The user-facing session: the stored tables plus markets, top of book and books at a time.

`ReplaySession` is what `arbkit.open_session` returns: a `arbkit.core.storage.Session` (so
``summary``, ``tables``, ``frame`` and ``raw`` are unchanged) with the replay views on top.
Every frame returned carries ``time`` (``Datetime("us", "UTC")``) beside the int64 ``recv_ns``
so Spark and DuckDB read it without options.

`Sessions` covers a folder of sessions: one lazy frame per table with a ``session`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path

import polars as pl

from arbkit.core.errors import StorageError
from arbkit.core.storage import MANIFEST, Session
from arbkit.replay.books import (
    BookAt,
    kalshi_book_at,
    kalshi_top_of_book,
    spot_top_of_book,
    to_datetime,
)

_MARKET_TIMES = ("open_ns", "close_ns", "expiration_ns")


def _ns(t: int | datetime) -> int:
    """``t`` as UTC ns (a naive datetime is refused: its zone would be a guess)."""
    if isinstance(t, datetime):
        if t.tzinfo is None:
            msg = f"{t!r} has no time zone; pass an aware datetime (UTC) or int ns"
            raise ValueError(msg)
        return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000
    return int(t)


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    return [value] if isinstance(value, str) else None if value is None else list(value)


class ReplaySession(Session):
    """A recorded session with replay views (books are rebuilt once, on first use)."""

    def markets(self) -> pl.DataFrame:
        """The latest state of every market discovery saw (``kalshi_markets``), one row each,
        with ``open``/``close``/``expiration`` datetimes beside the ``*_ns`` columns."""
        frame = self.frame("kalshi_markets").collect()
        return (
            frame.sort("recv_ns")
            .group_by("ticker", maintain_order=True)
            .last()
            .with_columns(to_datetime(c, c.removesuffix("_ns")) for c in _MARKET_TIMES)
            .sort("ticker")
        )

    @cached_property
    def _kalshi_book(self) -> pl.DataFrame:
        return self.frame("kalshi_book").collect()

    @cached_property
    def _events(self) -> pl.DataFrame:
        return self.frame("events").collect()

    @cached_property
    def _kalshi_tops(self) -> pl.DataFrame:
        return kalshi_top_of_book(self._kalshi_book, self._events)

    @cached_property
    def _spot_tops(self) -> pl.DataFrame:
        return spot_top_of_book(self.frame("spot_book").collect())

    def top_of_book(self, market: str | Sequence[str] | None = None) -> pl.DataFrame:
        """Kalshi top of book as of each ``recv_ns`` it changed, for one, some or all markets
        (see `arbkit.replay.books.kalshi_top_of_book` for the columns)."""
        names = _names(market)
        tops = self._kalshi_tops
        return tops if names is None else tops.filter(pl.col("market").is_in(names))

    def spot_top_of_book(self, venue: str | Sequence[str] | None = None) -> pl.DataFrame:
        """Best bid/ask per spot venue as of each ``recv_ns`` it changed (columns in
        `arbkit.replay.books.spot_top_of_book`)."""
        names = _names(venue)
        tops = self._spot_tops
        return tops if names is None else tops.filter(pl.col("venue").is_in(names))

    def book_at(self, market: str, t: int | datetime) -> BookAt:
        """The full book of ``market`` from what had been received by ``t`` (UTC ns or an
        aware datetime)."""
        return kalshi_book_at(self._kalshi_book, market, _ns(t), self._events)


def open_session(path: Path | str) -> ReplaySession:
    """Open a recorded session for reading, with the replay views."""
    return ReplaySession(path)


class Sessions:
    """Every session under a folder, table by table, as one lazy frame with ``session``."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            msg = f"{self.folder} is not a folder; pass the directory that holds session folders"
            raise StorageError(msg)
        self.sessions = [
            ReplaySession(d) for d in sorted(self.folder.iterdir()) if (d / MANIFEST).is_file()
        ]
        if not self.sessions:
            msg = f"no recording sessions under {self.folder} (no */{MANIFEST})"
            raise StorageError(msg)

    @property
    def tables(self) -> list[str]:
        """Tables present in at least one session."""
        return sorted({t for s in self.sessions for t in s.tables})

    def frame(self, table: str) -> pl.LazyFrame:
        """``table`` of every session stacked, with ``session`` (id) first and ``time``
        (UTC µs) beside ``recv_ns``; a session without the table contributes nothing."""
        parts = [
            s.frame(table).select(pl.lit(s.id).alias("session"), pl.all())
            for s in self.sessions
            if s.files(table)
        ]
        if not parts:
            return self.sessions[0].frame(table).select(pl.lit("").alias("session"), pl.all())
        frame = pl.concat(parts, how="diagonal_relaxed")  # newer sessions may add columns
        if "recv_ns" in frame.collect_schema():
            frame = frame.with_columns(to_datetime("recv_ns"))
        return frame

    def frames(self) -> dict[str, pl.LazyFrame]:
        """One lazy frame per table (`frame` for each of `tables`)."""
        return {t: self.frame(t) for t in self.tables}

    def write_parquet(self, table: str, path: Path | str) -> Path:
        """``table`` of every session as one Parquet file (µs UTC timestamps, plain types),
        for Spark or DuckDB reading files: ``spark.read.parquet(path)``."""
        out = Path(path)
        self.frame(table).sink_parquet(out)
        return out


def sessions(folder: Path | str) -> Sessions:
    """Every recorded session under ``folder`` (see `Sessions`)."""
    return Sessions(folder)
