"""Where parsed rows and raw frames go.

Transports and protocols write to a `Sink`; the session writer (`arbkit.core.storage`) is
the real one, `MemorySink` keeps everything in lists (tests, notebooks, one-shot commands).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

from arbkit.core.events import EventRow, RawFrame, Row


class Sink(Protocol):
    """Receives rows (normalised tables), raw frames per stream, and stream counters.

    A transport declares each raw stream it records, with the identity of the parser that
    reads it (`arbkit.venues.parsers`), before its first frame, so a replay uses that parser.
    """

    def write(self, row: Row) -> None: ...

    def declare_stream(self, stream: str, parser: Mapping[str, Any]) -> None: ...

    def write_raw(self, stream: str, frame: RawFrame) -> None: ...

    def count(self, stream: str, counter: str, n: int = 1) -> None: ...


class MemorySink:
    """A `Sink` that keeps rows in memory, by table and by raw stream."""

    def __init__(self) -> None:
        self.rows: defaultdict[str, list[Row]] = defaultdict(list)
        self.raw: defaultdict[str, list[RawFrame]] = defaultdict(list)
        self.counters: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.streams: dict[str, dict[str, Any]] = {}
        """Raw stream -> the parser identity declared for it."""

    def write(self, row: Row) -> None:
        self.rows[row.TABLE].append(row)

    def declare_stream(self, stream: str, parser: Mapping[str, Any]) -> None:
        self.streams[stream] = dict(parser)

    def write_raw(self, stream: str, frame: RawFrame) -> None:
        self.raw[stream].append(frame)

    def count(self, stream: str, counter: str, n: int = 1) -> None:
        self.counters[stream][counter] += n

    def events(self, kind: str | None = None) -> list[EventRow]:
        """The `EventRow`s written so far, in order; only those of ``kind`` if given."""
        return [
            e
            for e in self.rows["events"]
            if isinstance(e, EventRow) and (kind is None or e.kind == kind)
        ]

    def event_kinds(self) -> list[str]:
        """The kind of every `EventRow` written so far, in order."""
        return [e.kind for e in self.events()]


class NullSink:
    """A `Sink` that drops everything (benchmarks of the parse path alone)."""

    def write(self, row: Row) -> None:
        pass

    def declare_stream(self, stream: str, parser: Mapping[str, Any]) -> None:
        pass

    def write_raw(self, stream: str, frame: RawFrame) -> None:
        pass

    def count(self, stream: str, counter: str, n: int = 1) -> None:
        pass
