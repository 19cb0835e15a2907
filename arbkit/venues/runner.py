"""The one asyncio transport every venue feed runs on.

Venue protocols are sans-I/O (`FeedProtocol`): they turn received text into rows and queue
text to send. `run_feed` only moves frames: it connects, records every frame raw (the source
of truth) with its receive time taken before parsing, answers pings, watches for silence,
and reconnects with capped, jittered backoff until the caller stops it. It never gives up.

The backoff resets once a connection has delivered good data: the protocol says so
(`Delivering`: its snapshot arrived), or frames have kept coming for ``healthy_after``
seconds. A connection that fails before that keeps the schedule escalating.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import aiohttp

from arbkit.core.clock import now_ns
from arbkit.core.errors import StorageError
from arbkit.core.events import EventRow, RawFrame
from arbkit.core.retry import Backoff
from arbkit.core.sink import Sink
from arbkit.venues.parsers import identity_of

MAX_FRAME_BYTES = 64 * 1024 * 1024
"""Largest frame accepted (a full Coinbase BTC-USD snapshot is ~5 MB)."""


class FeedProtocol(Protocol):
    """A venue connection's protocol state machine, driven by `run_feed`."""

    stream: str
    silence_timeout: float
    reconnect_reason: str | None

    def url(self) -> str: ...

    def headers(self) -> dict[str, str]: ...

    def on_open(self, conn_id: int, now_ns: int) -> None: ...

    def on_message(self, text: str, recv_ns: int) -> None: ...

    def on_timer(self, now_ns: int) -> None: ...

    def on_close(self, now_ns: int, reason: str) -> None: ...

    def on_connect_error(self, now_ns: int, status: int | None, reason: str) -> None: ...

    def take_outgoing(self) -> list[str]: ...


@runtime_checkable
class HttpRequester(Protocol):
    """A protocol that also needs REST GETs made for it (e.g. Bitstamp's diff snapshot)."""

    def take_http(self) -> Sequence[HttpGet]: ...

    def on_http_response(self, request: Any, status: int, text: str, recv_ns: int) -> None: ...


class HttpGet(Protocol):
    url: str


@runtime_checkable
class Delivering(Protocol):
    """A protocol that can say its connection delivered good data (e.g. its snapshot): the
    runner then resets the reconnect backoff (see `arbkit.core.retry`)."""

    def delivered(self) -> bool: ...


@runtime_checkable
class PingListener(Protocol):
    """A protocol that wants to know of the venue's WebSocket pings (liveness without data,
    e.g. Kalshi's every 10 s: their absence marks the books stale before the reconnect)."""

    def on_ping(self, now_ns: int) -> None: ...


class HealthWatch:
    """When one connection has delivered good data, so its backoff starts over: the protocol
    says so (`Delivering`), or frames kept coming for ``backoff.healthy_after`` seconds. A
    connection that fails before that keeps escalating the backoff."""

    def __init__(self, protocol: FeedProtocol, backoff: Backoff) -> None:
        self._delivered = protocol.delivered if isinstance(protocol, Delivering) else None
        self._backoff = backoff
        self._first: float | None = None
        self.healthy = False

    def frames(self, now_s: float) -> None:
        """Frames arrived at ``now_s`` (seconds on any monotonic clock)."""
        if self.healthy:
            return
        if self._first is None:
            self._first = now_s
        if (self._delivered is not None and self._delivered()) or (
            now_s - self._first >= self._backoff.healthy_after
        ):
            self._backoff.healthy()
            self.healthy = True


class _Connection:
    """Numbers connections and frames and records everything about them to the sink."""

    def __init__(
        self,
        protocol: FeedProtocol,
        sink: Sink,
        http: aiohttp.ClientSession | None,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        """``clock`` stamps what is recorded without a time of its own (a generated session
        passes its virtual clock; ``http`` is None there, GETs being answered virtually)."""
        self.protocol = protocol
        self.clock = clock
        self.sink = sink
        self.http = http
        self.stream = protocol.stream
        self.conn_id = 0
        self.frame_no = 0
        self.requester = protocol if isinstance(protocol, HttpRequester) else None
        self.gets: set[asyncio.Task[None]] = set()

    def record(self, kind: str, payload: str, t_ns: int | None = None) -> None:
        self.frame_no += 1
        t = self.clock() if t_ns is None else t_ns
        self.sink.write_raw(self.stream, RawFrame(t, self.conn_id, self.frame_no, kind, payload))

    def event(self, kind: str, detail: str) -> None:
        self.sink.write(
            EventRow(self.clock(), self.stream, self.conn_id, kind, "", detail, None, None)
        )

    async def flush_outgoing(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        texts: list[str] | None = None,
        gets: Sequence[HttpGet] | None = None,
    ) -> None:
        """Send the protocol's queued texts and start its GETs (``texts``/``gets``: already
        taken from it)."""
        for text in self.protocol.take_outgoing() if texts is None else texts:
            self.record("send", text)
            await ws.send_str(text)
        if self.requester is not None:
            for request in self.requester.take_http() if gets is None else gets:
                task = asyncio.create_task(self._get(self.requester, request))
                self.gets.add(task)
                task.add_done_callback(self.gets.discard)

    async def _get(self, requester: HttpRequester, request: HttpGet) -> None:
        """Make one GET for the protocol; the reply is recorded raw as kind ``http``."""
        self.record("send", f"GET {request.url}")
        assert self.http is not None
        try:
            async with self.http.get(request.url) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            text, status = describe(exc), 0
        recv = now_ns()
        self.record(*http_record(status, text), recv)
        _guarded(
            self,
            "on_http_response",
            lambda: requester.on_http_response(request, status, text, recv),
        )

    def cancel_gets(self) -> None:
        for task in self.gets:
            task.cancel()


def http_record(status: int, text: str) -> tuple[str, str]:
    """How a GET's reply is recorded raw: a 200 body as kind ``http``; any other status as
    ``error`` with ``HTTP <status> `` before the body, and a failed request (status 0) as
    ``error`` with the reason, so a replay hands the protocol the same status and text."""
    if status == 200:
        return "http", text
    return "error", f"HTTP {status} {text}" if status else text


def receive_frame(conn: _Connection, text: str, recv: int) -> bool:
    """Record one received frame raw, then parse it (`deliver`); False asks for a reconnect.
    The live read loop and a generated session's virtual link both take frames through here."""
    conn.frame_no += 1
    conn.sink.write_raw(conn.stream, RawFrame(recv, conn.conn_id, conn.frame_no, "frame", text))
    return deliver(conn.protocol, conn.sink, text, recv, conn.conn_id, conn.frame_no)


def describe(exc: BaseException) -> str:
    """An exception as text safe to record: its type and message, never its repr (aiohttp's
    request errors carry the request headers, which hold Kalshi's key id and signature)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def deliver(
    protocol: FeedProtocol, sink: Sink, text: str, recv_ns: int, conn_id: int, frame_no: int
) -> bool:
    """Hand one received frame to the protocol: the per-frame step live and replay share
    (`arbkit.replay.player`). A parser bug must not end the recording: it is recorded (at the
    frame's receive time), counted, and answered with a reconnect; returns False then."""
    try:
        protocol.on_message(text, recv_ns)
    except StorageError:
        raise
    except Exception as exc:
        detail = f"frame {frame_no} broke the parser: {describe(exc)}"
        sink.write(EventRow(recv_ns, protocol.stream, conn_id, "error", "", detail, None, None))
        sink.count(protocol.stream, "errors")
        protocol.reconnect_reason = f"parser error ({type(exc).__name__})"
        return False
    return True


def _guarded(conn: _Connection, what: str, call: Callable[[], None]) -> None:
    """Run a protocol callback; a bug in it is recorded and answered with a reconnect, never
    allowed to end the feed (the raw frames are kept, so the data can be re-derived)."""
    try:
        call()
    except StorageError:
        raise
    except Exception as exc:
        conn.event("error", f"{what} failed: {describe(exc)}")
        conn.sink.count(conn.stream, "errors")
        conn.protocol.reconnect_reason = f"protocol error in {what} ({type(exc).__name__})"


async def run_feed(
    protocol: FeedProtocol,
    sink: Sink,
    *,
    stop: asyncio.Event,
    backoff: Backoff | None = None,
    http: aiohttp.ClientSession | None = None,
    timer_interval: float = 1.0,
) -> None:
    """Keep ``protocol`` connected and fed until ``stop`` is set."""
    backoff = backoff or Backoff()
    sink.declare_stream(protocol.stream, identity_of(protocol))
    owns_http = http is None
    session = http or aiohttp.ClientSession()
    conn = _Connection(protocol, sink, session)
    try:
        while not stop.is_set():
            reason = await _connect_once(protocol, conn, session, stop, backoff, timer_interval)
            if stop.is_set():
                break
            delay = backoff.delay(time.monotonic())
            sink.count(conn.stream, "reconnects")
            conn.event("reconnect", f"{reason}; retrying in {delay:.1f} s")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
    finally:
        if owns_http:
            await session.close()


async def _connect_once(
    protocol: FeedProtocol,
    conn: _Connection,
    session: aiohttp.ClientSession,
    stop: asyncio.Event,
    backoff: Backoff,
    timer_interval: float,
) -> str:
    """One connection's life; returns why it ended."""
    url = protocol.url()
    try:
        ws = await session.ws_connect(
            url,
            headers=protocol.headers(),
            autoping=False,
            max_msg_size=MAX_FRAME_BYTES,
            timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
        )
    except aiohttp.WSServerHandshakeError as exc:
        return _connect_failed(protocol, conn, exc.status, f"handshake refused: HTTP {exc.status}")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return _connect_failed(protocol, conn, None, f"cannot connect: {describe(exc)}")

    conn.conn_id += 1
    opened = now_ns()  # the protocol opens at the time recorded (a replay opens it then too)
    conn.record("connect", url, opened)
    conn.event("connect", url)
    _guarded(conn, "on_open", lambda: protocol.on_open(conn.conn_id, opened))
    reason = "closed by server"
    try:
        await conn.flush_outgoing(ws)
        reason = await _read_loop(protocol, conn, ws, stop, backoff, timer_interval)
    except (aiohttp.ClientError, OSError, ConnectionError) as exc:
        reason = f"connection error: {describe(exc)}"
    finally:
        t = now_ns()
        conn.record("disconnect", reason, t)
        conn.event("disconnect", reason)
        conn.cancel_gets()
        protocol.on_close(t, reason)
        protocol.reconnect_reason = None
        with contextlib.suppress(Exception):
            await ws.close()
    return reason


def _connect_failed(protocol: FeedProtocol, conn: _Connection, status: int | None, why: str) -> str:
    t = now_ns()
    conn.record("error", why, t)
    conn.sink.count(conn.stream, "errors")
    protocol.on_connect_error(t, status, why)
    return why


async def _read_loop(
    protocol: FeedProtocol,
    conn: _Connection,
    ws: aiohttp.ClientWebSocketResponse,
    stop: asyncio.Event,
    backoff: Backoff,
    timer_interval: float,
) -> str:
    """Receive until the connection ends; returns why.

    Per frame this is the hot path of every feed, so it does only what each frame needs
    (record raw, parse, send what the protocol queued). The deadline (next timer tick or
    silence limit) is one `asyncio.timeout` scope around a run of receives rather than a
    timeout per frame: arming and cancelling a timer per frame cost more than parsing the
    frame. A frame is never lost to the deadline (it stays queued in aiohttp until the next
    receive), and pongs and sends are made outside it. The ``frames`` counter is added up
    per scope.
    """
    loop = asyncio.get_running_loop()
    sink, stream = conn.sink, conn.stream
    take_outgoing = protocol.take_outgoing
    take_http = conn.requester.take_http if conn.requester is not None else None
    on_ping = protocol.on_ping if isinstance(protocol, PingListener) else None
    health = HealthWatch(protocol, backoff)
    text_kind, binary_kind = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
    last_alive = loop.time()
    next_timer = last_alive + timer_interval
    while True:
        now = loop.time()
        if now >= next_timer:
            _guarded(conn, "on_timer", lambda: protocol.on_timer(now_ns()))
            next_timer = now + timer_interval
            await conn.flush_outgoing(ws)
        if protocol.reconnect_reason:
            return protocol.reconnect_reason
        silence_left = last_alive + protocol.silence_timeout - now
        if silence_left <= 0:
            return f"silent for {protocol.silence_timeout:g} s"
        frames = 0
        out: list[str] | None = None
        gets: Sequence[HttpGet] | None = None
        ping: bytes | None = None
        try:
            async with asyncio.timeout(min(silence_left, next_timer - now)):
                while True:
                    msg = await ws.receive()
                    recv = now_ns()
                    last_alive = loop.time()
                    kind = msg.type
                    if kind is text_kind or kind is binary_kind:
                        text = (
                            msg.data if kind is text_kind else msg.data.decode("utf-8", "replace")
                        )
                        frames += 1
                        if not receive_frame(conn, text, recv):
                            break
                    elif kind is aiohttp.WSMsgType.PING:
                        ping = msg.data
                        break
                    elif kind is aiohttp.WSMsgType.ERROR:
                        error = ws.exception()
                        return f"connection error: {describe(error) if error else 'unknown'}"
                    elif kind is not aiohttp.WSMsgType.PONG:
                        code = ws.close_code
                        return f"closed by server (code {code})" if code else "closed by server"
                    # Sends happen outside the deadline scope, so it never cuts one short.
                    out = take_outgoing()
                    gets = take_http() if take_http is not None else None
                    if (
                        out
                        or gets
                        or stop.is_set()
                        or protocol.reconnect_reason
                        or last_alive >= next_timer
                    ):
                        break
        except TimeoutError:
            pass
        finally:
            if frames:
                sink.count(stream, "frames", frames)
                health.frames(last_alive)  # also when the connection ended inside the scope
        if ping is not None:
            if on_ping is not None:
                _guarded(conn, "on_ping", lambda: on_ping(now_ns()))
            await ws.pong(ping)
        await conn.flush_outgoing(ws, out, gets)
        if stop.is_set():
            return "stopped"
