"""The shared feed runner against a real WebSocket server on loopback."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import aiohttp
from aiohttp import web

from arbkit.core.events import EventRow
from arbkit.core.retry import Backoff
from arbkit.core.sink import MemorySink
from arbkit.venues.runner import run_feed


class Recorder:
    """A minimal `FeedProtocol`: subscribes on open, keeps what it is told."""

    stream = "test"

    def __init__(self, url: str, silence_timeout: float = 5.0) -> None:
        self._url = url
        self.silence_timeout = silence_timeout
        self.reconnect_reason: str | None = None
        self.outgoing: list[str] = []
        self.opened: list[int] = []
        self.messages: list[str] = []
        self.closed: list[str] = []
        self.connect_errors: list[int | None] = []
        self.timers = 0

    def url(self) -> str:
        return self._url

    def headers(self) -> dict[str, str]:
        return {"X-Attempt": str(len(self.opened) + len(self.connect_errors))}

    def on_open(self, conn_id: int, now_ns: int) -> None:
        self.opened.append(conn_id)
        self.outgoing.append(f'{{"subscribe":{conn_id}}}')

    def on_message(self, text: str, recv_ns: int) -> None:
        self.messages.append(text)
        if text == "please reconnect":
            self.reconnect_reason = "asked to"

    def on_timer(self, now_ns: int) -> None:
        self.timers += 1

    def on_close(self, now_ns: int, reason: str) -> None:
        self.closed.append(reason)

    def on_connect_error(self, now_ns: int, status: int | None, reason: str) -> None:
        self.connect_errors.append(status)

    def take_outgoing(self) -> list[str]:
        out, self.outgoing = self.outgoing, []
        return out


async def run_until(
    proto: Recorder, sink: MemorySink, done: Callable[[], bool], *, timeout: float = 5.0
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_feed(proto, sink, stop=stop, backoff=Backoff(0.05, 0.4), timer_interval=0.05)
    )
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_frames_are_recorded_raw_and_a_dropped_connection_reconnects(serve) -> None:  # type: ignore[no-untyped-def]
    received: list[str] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        received.append((await ws.receive()).data)
        for i in range(3):
            await ws.send_str(f"frame {i} of {request.headers['X-Attempt']}")
        await ws.close()
        return ws

    proto = Recorder(await serve(handler))
    sink = MemorySink()
    await run_until(proto, sink, lambda: len(proto.opened) >= 2 and len(proto.messages) >= 6)
    assert proto.opened[:2] == [1, 2]
    assert received[:2] == ['{"subscribe":1}', '{"subscribe":2}']
    assert proto.messages[:6] == [f"frame {i} of {a}" for a in (0, 1) for i in range(3)]
    raw = sink.raw["test"]
    kinds = [f.kind for f in raw if f.conn_id == 1]
    assert kinds == ["connect", "send", "frame", "frame", "frame", "disconnect"]
    assert [f.frame_no for f in raw] == sorted(f.frame_no for f in raw)
    assert all(a.recv_ns <= b.recv_ns for a, b in itertools.pairwise(raw))
    events = [e.kind for e in sink.rows["events"] if isinstance(e, EventRow)]
    assert events[:3] == ["connect", "disconnect", "reconnect"]
    assert sink.counters["test"]["frames"] >= 6
    assert sink.counters["test"]["reconnects"] >= 1


async def test_silence_is_detected_and_pings_count_as_life(serve) -> None:  # type: ignore[no-untyped-def]
    async def silent(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await asyncio.sleep(3)
        return ws

    proto = Recorder(await serve(silent), silence_timeout=0.3)
    await run_until(proto, MemorySink(), lambda: len(proto.closed) >= 1)
    assert proto.closed[0] == "silent for 0.3 s"

    pongs: list[bytes] = []

    async def pinging(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        for _ in range(12):
            await ws.ping(b"heartbeat")
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.PONG:
                pongs.append(msg.data)
            await asyncio.sleep(0.1)
        await ws.close()
        return ws

    proto2 = PingCounter(await serve(pinging), silence_timeout=0.3)
    await run_until(proto2, MemorySink(), lambda: len(proto2.closed) >= 1)
    assert proto2.closed[0].startswith("closed by server")  # not "silent": pings kept it alive
    assert pongs[:3] == [b"heartbeat"] * 3
    assert len(proto2.pings) >= 3  # and the protocol heard of each (Kalshi's stale check)


class PingCounter(Recorder):
    """A `Recorder` that is a `PingListener`."""

    def __init__(self, url: str, silence_timeout: float = 5.0) -> None:
        super().__init__(url, silence_timeout)
        self.pings: list[int] = []

    def on_ping(self, now_ns: int) -> None:
        self.pings.append(now_ns)


async def test_refused_handshake_backs_off_without_a_storm(serve) -> None:  # type: ignore[no-untyped-def]
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=401, text="bad signature")

    proto = Recorder(await serve(refuse))
    sink = MemorySink()
    stop = asyncio.Event()
    task = asyncio.create_task(run_feed(proto, sink, stop=stop, backoff=Backoff(0.2, 5.0)))
    await asyncio.sleep(1.6)
    stop.set()
    await asyncio.wait_for(task, 5)
    # delays ~0.2, 0.4, 0.8 (+-20 %): at most 4 attempts in 1.6 s, each recorded
    assert 2 <= len(proto.connect_errors) <= 4
    assert set(proto.connect_errors) == {401}
    assert [f.kind for f in sink.raw["test"]] == ["error"] * len(proto.connect_errors)
    assert "HTTP 401" in sink.raw["test"][0].payload
    assert not proto.opened


async def test_protocol_can_ask_for_a_reconnect(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("please reconnect")
        await asyncio.sleep(5)
        return ws

    proto = Recorder(await serve(handler))
    await run_until(proto, MemorySink(), lambda: len(proto.opened) >= 2)
    assert proto.closed[0] == "asked to"


class _Get:
    def __init__(self, url: str) -> None:
        self.url = url


class Fetcher(Recorder):
    """Asks the runner for a REST GET when it connects (like Bitstamp's diff snapshot)."""

    def __init__(self, url: str, rest_url: str) -> None:
        super().__init__(url)
        self.rest_url = rest_url
        self.pending: list[_Get] = []
        self.replies: list[tuple[str, int, str]] = []

    def on_open(self, conn_id: int, now_ns: int) -> None:
        super().on_open(conn_id, now_ns)
        self.pending.append(_Get(self.rest_url))

    def take_http(self) -> list[_Get]:
        out, self.pending = self.pending, []
        return out

    def on_http_response(self, request: _Get, status: int, text: str, recv_ns: int) -> None:
        self.replies.append((request.url, status, text))


async def test_runner_makes_the_gets_a_protocol_asks_for_and_records_them(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await asyncio.sleep(3)
        return ws

    sink = MemorySink()
    app = web.Application()

    async def book(_: web.Request) -> web.Response:
        return web.Response(text='{"bids":[]}')

    app.router.add_get("/book", book)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    proto = Fetcher(await serve(handler), f"http://127.0.0.1:{runner.addresses[0][1]}/book")
    try:
        await run_until(proto, sink, lambda: bool(proto.replies))
    finally:
        await runner.cleanup()
    assert proto.replies == [(proto.rest_url, 200, '{"bids":[]}')]
    kinds = [(f.kind, f.payload) for f in sink.raw["test"] if f.kind in ("send", "http")]
    assert ("send", f"GET {proto.rest_url}") in kinds
    assert ("http", '{"bids":[]}') in kinds


class Buggy(Recorder):
    """A protocol whose parser raises on one frame."""

    def on_message(self, text: str, recv_ns: int) -> None:
        if text == "boom":
            raise ZeroDivisionError("parser bug")
        super().on_message(text, recv_ns)


async def test_a_parser_exception_is_recorded_and_the_feed_reconnects(serve) -> None:  # type: ignore[no-untyped-def]
    connections = 0

    async def handler(request: web.Request) -> web.WebSocketResponse:
        nonlocal connections
        connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("boom" if connections == 1 else "fine")
        await asyncio.sleep(3)
        return ws

    proto = Buggy(await serve(handler))
    sink = MemorySink()
    await run_until(proto, sink, lambda: len(proto.opened) >= 2 and "fine" in proto.messages)
    assert proto.closed[0] == "parser error (ZeroDivisionError)"
    errors = [e for e in sink.rows["events"] if isinstance(e, EventRow) and e.kind == "error"]
    assert "broke the parser" in errors[0].detail
    assert next(f.payload for f in sink.raw["test"] if f.kind == "frame") == "boom"  # kept raw


class Delivers(Recorder):
    """A `Recorder` that counts its connection good once a "snapshot" frame arrived."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.snapshot = False

    def on_open(self, conn_id: int, now_ns: int) -> None:
        super().on_open(conn_id, now_ns)
        self.snapshot = False

    def on_message(self, text: str, recv_ns: int) -> None:
        super().on_message(text, recv_ns)
        self.snapshot = self.snapshot or text == "snapshot"

    def delivered(self) -> bool:
        return self.snapshot


def _retry_delays(sink: MemorySink) -> list[float]:
    return [
        float(e.detail.rsplit("retrying in ", 1)[1].split()[0])
        for e in sink.rows["events"]
        if isinstance(e, EventRow) and e.kind == "reconnect"
    ]


async def test_backoff_resets_once_a_connection_delivered_and_escalates_otherwise(serve) -> None:  # type: ignore[no-untyped-def]
    """A link that drops right after its snapshot reconnects at the initial delay every time
    (it used to take 60 s of health to reset, so short-lived links climbed to the cap); one
    that never delivers anything keeps escalating."""

    async def snapshot_then_drop(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("snapshot")
        await asyncio.sleep(0.05)
        await ws.close()
        return ws

    async def drop_at_once(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close()
        return ws

    for handler, delivering in ((snapshot_then_drop, True), (drop_at_once, False)):
        proto = Delivers(await serve(handler))
        sink = MemorySink()
        stop = asyncio.Event()
        backoff = Backoff(0.1, 1.0, jitter=0.0)
        task = asyncio.create_task(run_feed(proto, sink, stop=stop, backoff=backoff))
        async with asyncio.timeout(10):
            while len(_retry_delays(sink)) < 5:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        delays = _retry_delays(sink)[:5]
        assert delays == ([0.1] * 5 if delivering else [0.1, 0.2, 0.4, 0.8, 1.0])
