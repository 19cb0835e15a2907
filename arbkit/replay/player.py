"""Replay a session's raw frames through the parsers that read them live.

Each raw stream of a session is read back in the order it was written and fed to the parser
named for it in session.json (``streams.<stream>.parser``, `arbkit.venues.parsers`), the way
the transport fed it live: ``connect`` / ``disconnect`` markers open and close the protocol's
connection, each ``frame`` goes through `arbkit.venues.runner.deliver` (the runner's own
per-frame step), ``http`` / ``error`` replies go to the protocol's HTTP handler, and the
commands the live client sent (``send``) that came from outside the protocol (Kalshi markets
added or dropped by discovery) are applied again. Timer ticks are not recorded; where a spot
feed sent something its replayed parser had not queued (a heartbeat, a REST retry), the live
tick that sent it is inferred and the parser's timer runs at that time. Streams are merged by
``recv_ns`` with a heap over per-stream iterators of Parquet record batches, so memory stays
bounded however long the session; the rows the parsers emit are yielded as they come.

What a replay reproduces exactly: the rows a parser writes in response to received data
(``kalshi_book``, ``kalshi_trades``, ``kalshi_ticker``, ``kalshi_lifecycle``,
``kalshi_cf_index``, ``spot_book``) and the events it writes then (gaps, duplicates,
malformed frames, resyncs, subscriptions...; `parser_events`). What it cannot: tables other
components write (`NOT_FROM_RAW`), and events written on a timer tick (`TIMER_EVENTS`) or by
the transport (`TRANSPORT_EVENTS`).
"""

from __future__ import annotations

import heapq
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow.parquet as pq

from arbkit.core.errors import StorageError
from arbkit.core.events import EventRow, RawFrame, Row, row_type_of
from arbkit.core.storage import Session, open_session, rows_table
from arbkit.venues.kalshi.protocol import MARKET_CHANNELS, KalshiProtocol
from arbkit.venues.parsers import ERAS, Identity, build, for_date
from arbkit.venues.runner import HttpRequester, deliver, describe

BATCH_ROWS = 4096
"""Raw frames read at a time per stream (bounds the player's memory)."""

NOT_FROM_RAW: dict[str, str] = {
    "index": "computed by the BRTI replica from the books at its own ticks, not parsed",
    "signals": "decided by the strategy, not parsed",
    "kalshi_markets": "written by market discovery from REST listings that are not raw-recorded",
    "kalshi_rest_book": "raw/kalshi_rest keeps the bodies but not the HTTP status or Age header",
}
"""Tables a replay of raw frames cannot re-derive, and why."""

TRANSPORT_EVENTS = ("connect", "disconnect", "reconnect")
"""Event kinds the transport writes at wall-clock time (the raw markers carry the same facts)."""
TIMER_EVENTS: dict[str, tuple[str, ...]] = {
    "": ("stale",),
    "kalshi_ws": ("crossed", "stale"),
    "paxos": ("divergence", "resync"),
}
"""Event kinds parsers write on their timer ticks, by stream ("": every stream): not replayed
exactly, as only the ticks that sent something can be inferred. Kalshi's timer-driven resync
escalations (snapshots overdue) are ``resync`` events like the frame-driven ones and differ
too where they occur; Paxos compares its book with a REST reply on the tick after the reply's
grace, so its ``divergence`` and the ``resync`` it starts come from a tick too."""

_HTTP_STATUS = re.compile(r"HTTP (\d{3})")
_HTTP_ERROR = re.compile(r"HTTP (\d{3}) ")
QUEUED_KEPT = 1000
"""Queued texts remembered per stream while their sends are awaited (bounded)."""


def _http_reply(kind: str, payload: str) -> tuple[int, str]:
    """Status and body of a recorded GET reply (`arbkit.venues.runner.http_record`)."""
    if kind == "http":
        return 200, payload
    m = _HTTP_ERROR.match(payload)
    return (int(m.group(1)), payload[m.end() :]) if m else (0, payload)


class ReplaySink:
    """Where a replayed parser writes: rows queue up until the player yields them."""

    def __init__(self) -> None:
        self.pending: list[Row] = []
        self.counters: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )

    def write(self, row: Row) -> None:
        self.pending.append(row)

    def write_raw(self, stream: str, frame: RawFrame) -> None:
        """Replayed parsers only read raw frames; nothing is recorded twice."""

    def count(self, stream: str, counter: str, n: int = 1) -> None:
        self.counters[stream][counter] += n

    def declare_stream(self, stream: str, parser: Any) -> None:
        """The identity is already in the session being replayed."""


class StreamReplay:
    """One raw stream fed to its parser exactly as the runner fed it live."""

    def __init__(self, stream: str, identity: Identity, sink: ReplaySink) -> None:
        self.stream = stream
        self.identity = identity
        self.sink = sink
        self.protocol: Any = build(identity, sink)
        self.requester = self.protocol if isinstance(self.protocol, HttpRequester) else None
        self.requests: deque[Any] = deque()
        """GETs the parser asked for, awaiting their recorded replies (in order)."""
        self.unsent: deque[Any] = deque()
        """Those GETs whose recorded ``send`` has not come yet."""
        self.queued: deque[str] = deque(maxlen=QUEUED_KEPT)
        """Texts the parser queued whose recorded ``send`` has not come yet."""
        self.connected = False
        self.frames = 0

    def feed(self, frame: RawFrame) -> None:
        """Apply one raw frame (any kind) to the parser."""
        kind, t = frame.kind, frame.recv_ns
        protocol = self.protocol
        if kind == "frame":
            self.frames += 1
            deliver(protocol, self.sink, frame.payload, t, frame.conn_id, frame.frame_no)
        elif kind == "connect":
            self.connected = True
            self._forget()
            self._guarded("on_open", lambda: protocol.on_open(frame.conn_id, t), frame)
        elif kind == "disconnect":
            self.connected = False
            self._forget()
            protocol.on_close(t, frame.payload)
            protocol.reconnect_reason = None
        elif kind == "send":
            if isinstance(protocol, KalshiProtocol):
                _kalshi_sent(protocol, frame.payload, t)
            elif not self._expected(frame.payload):
                # the live protocol sent this from a timer tick just before: tick it here
                self._guarded("on_timer", lambda: protocol.on_timer(t), frame)
                self._drain()
                self._expected(frame.payload)
        elif kind == "http" or (kind == "error" and self.connected and self.requests):
            request = self.requests.popleft() if self.requests else None
            if request is None or self.requester is None:
                self.sink.count(self.stream, "replay_unmatched_http")
            else:
                status, text = _http_reply(kind, frame.payload)
                on_http = self.requester.on_http_response
                self._guarded("on_http_response", lambda: on_http(request, status, text, t), frame)
        elif kind == "error":
            refused = _HTTP_STATUS.search(frame.payload)
            protocol.on_connect_error(t, int(refused.group(1)) if refused else None, frame.payload)
        self._drain()

    def _expected(self, sent: str) -> bool:
        """Whether the replayed parser had queued what the live client sent (and take it)."""
        if sent.startswith("GET "):
            if self.unsent:
                self.unsent.popleft()
                return True
            return False
        if sent in self.queued:
            while self.queued.popleft() != sent:
                pass
            return True
        return False

    def _forget(self) -> None:
        """A connection began or ended: the runner cancels its GETs, and sends start afresh."""
        self.requests.clear()
        self.unsent.clear()
        self.queued.clear()

    def _guarded(self, what: str, call: Callable[[], None], frame: RawFrame) -> None:
        """A callback the runner guards live: a bug in it is recorded, not raised (as live,
        but at the raw frame's time)."""
        try:
            call()
        except Exception as exc:
            detail = f"{what} failed: {describe(exc)}"
            self.sink.write(
                EventRow(frame.recv_ns, self.stream, frame.conn_id, "error", "", detail, None, None)
            )
            self.sink.count(self.stream, "errors")

    def _drain(self) -> None:
        """Take what the parser queued to send (kept to tell its own sends from a timer's)."""
        self.queued.extend(self.protocol.take_outgoing())
        if self.requester is not None:
            gets = self.requester.take_http()
            self.requests.extend(gets)
            self.unsent.extend(gets)


def _kalshi_sent(protocol: KalshiProtocol, text: str, t_ns: int) -> None:
    """Apply a command the live client sent: market changes made from outside the protocol
    (discovery adding or dropping markets) are made again; the protocol's own are no-ops."""
    try:
        cmd = orjson.loads(text)
        params = cmd.get("params") or {}
        tickers = [str(m) for m in params.get("market_tickers") or ()]
        channels = params.get("channels") or ()
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return
    action = params.get("action")
    if cmd.get("cmd") == "subscribe" and any(c in MARKET_CHANNELS for c in channels):
        action = "add_markets"
    if action == "add_markets":
        protocol.add_markets([m for m in tickers if m not in protocol.markets], t_ns)
    elif action == "delete_markets":
        protocol.remove_markets([m for m in tickers if m in protocol.markets], t_ns)


def _frames(files: list[Path], batch_rows: int) -> Iterator[RawFrame]:
    """A raw stream's frames in write order, read one record batch at a time."""
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            cols = batch.to_pydict()
            yield from map(
                RawFrame,
                cols["recv_ns"],
                cols["conn_id"],
                cols["frame_no"],
                cols["kind"],
                cols["payload"],
            )


class Player:
    """Replays a session's raw streams through their recorded parsers, merged by ``recv_ns``.

    ``streams`` limits the replay to some raw streams (default: every stream with a parser,
    declared in session.json or, for sessions that predate declarations, chosen by date from
    `arbkit.venues.parsers.ERAS`). After iterating, `protocols` hold the parsers' final state
    (books) and `counters` what they counted.
    """

    def __init__(
        self,
        session: Session | Path | str,
        streams: Iterable[str] | None = None,
        *,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.session = session if isinstance(session, Session) else open_session(session)
        self.batch_rows = batch_rows
        recorded = [t.removeprefix("raw/") for t in self.session.tables if t.startswith("raw/")]
        self.identities: dict[str, Identity] = {}
        self.skipped: list[str] = []
        """Raw streams with no known parser (e.g. ``kalshi_rest``), not replayed."""
        wanted = recorded if streams is None else list(streams)
        for stream in wanted:
            if stream not in recorded:
                msg = f"no raw stream {stream!r} in {self.session.path}; it has {recorded}"
                raise StorageError(msg)
            identity = self.session.stream_parser(stream)
            if identity is None and stream in ERAS:
                identity = for_date(stream, int(self.session.manifest.get("start_ns") or 0))
            if identity is None:
                self.skipped.append(stream)
            else:
                self.identities[stream] = identity
        self.sink = ReplaySink()
        self.replays: dict[str, StreamReplay] = {}

    @property
    def streams(self) -> list[str]:
        """The raw streams this player replays."""
        return list(self.identities)

    @property
    def protocols(self) -> dict[str, Any]:
        """Stream -> its replayed parser (after or during iteration)."""
        return {s: r.protocol for s, r in self.replays.items()}

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """What the replayed parsers counted, per stream."""
        return {s: dict(c) for s, c in self.sink.counters.items()}

    def frames(self) -> Iterator[tuple[str, RawFrame]]:
        """Every replayed stream's raw frames, merged by ``recv_ns`` (ties: stream order)."""
        iters = [self._keyed(i, stream) for i, stream in enumerate(self.identities)]
        merged = heapq.merge(*iters) if len(iters) != 1 else iters[0]
        for _, _, stream, frame in merged:
            yield stream, frame

    def _keyed(self, i: int, stream: str) -> Iterator[tuple[int, int, str, RawFrame]]:
        for f in _frames(self.session.files(f"raw/{stream}"), self.batch_rows):
            yield f.recv_ns, i, stream, f

    def __iter__(self) -> Iterator[Row]:
        """Replay from the start: the rows the parsers emit, in the order they emit them."""
        self.sink = ReplaySink()
        self.replays = {
            s: StreamReplay(s, identity, self.sink) for s, identity in self.identities.items()
        }
        pending = self.sink.pending
        for stream, frame in self.frames():
            self.replays[stream].feed(frame)
            if pending:
                yield from pending
                pending.clear()


def replay(session: Session | Path | str, streams: Iterable[str] | None = None) -> Iterator[Row]:
    """The rows a session's parsers emit when its raw frames are replayed, in ``recv_ns``
    order of the frames that caused them (streaming; see `Player`)."""
    return iter(Player(session, streams))


def replay_tables(
    session: Session | Path | str, streams: Iterable[str] | None = None
) -> dict[str, pl.DataFrame]:
    """Replay a session and return each table the parsers wrote, with its recorded schema.

    Row order within a table is the order the rows were written, as in the recording (tables
    written by several streams, ``spot_book`` and ``events``, interleave them by ``recv_ns``).
    """
    rows: defaultdict[str, list[Row]] = defaultdict(list)
    for row in replay(session, streams):
        rows[row.TABLE].append(row)
    return {
        table: pl.from_arrow(rows_table(row_type_of(table), table_rows))  # type: ignore[misc]
        for table, table_rows in rows.items()
    }


def parser_events(events: pl.DataFrame) -> pl.DataFrame:
    """The rows of an ``events`` table a replay reproduces: those parsers write while reading
    frames (without `TRANSPORT_EVENTS` and the timer-driven kinds of `TIMER_EVENTS`)."""
    timer = pl.col("kind").is_in(TIMER_EVENTS[""])
    for stream, kinds in TIMER_EVENTS.items():
        if stream:
            timer = timer | ((pl.col("stream") == stream) & pl.col("kind").is_in(kinds))
    return events.filter(~pl.col("kind").is_in(TRANSPORT_EVENTS) & ~timer)
